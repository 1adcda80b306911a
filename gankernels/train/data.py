"""Training data: the toy sets of docs/math.md section 7, scikit-learn's 8x8 digits, a user's file.

Toy sets (WGAN-GP's gan_toy.py, VEEGAN, PacGAN):
  ring8     8 Gaussians, centres 2 * (cos 2 pi k / 8, sin 2 pi k / 8), std 0.02, all / 1.414
  grid25    25 Gaussians, centres (2i, 2j) for i, j in {-2..2}, std 0.05, all / 2.828
  swissroll sklearn's swiss roll, noise 0.25, columns (0, 2), all / 7.5
digits: sklearn.datasets.load_digits (ships with scikit-learn, no download), 0..16 -> [-1, 1],
shape N x 1 x 8 x 8. A user's `.pt` / `.npy` file holds one tensor of shape N x D or N x C x H x W.

ring8 and grid25 carry the index of each sample's mode as its label, digits its digit. The
two-domain sets pair every digit (domain A) with an image made from it (domain B), row for row:
  digits-inverted  -x (white on black becomes black on white)
  digits-rotated   x turned 90 degrees anticlockwise
  digits-edges     the Sobel gradient magnitude of x, rescaled to [-1, 1]
A variant that needs pairs (pix2pix) trains on the rows as they are; one that needs unpaired
domains (CycleGAN) draws its A and B batches independently.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

TOY_SETS = ("ring8", "grid25", "swissroll")
TWO_DOMAIN_SETS = ("digits-inverted", "digits-rotated", "digits-edges")
BUILTIN_SETS = (*TOY_SETS, "digits", *TWO_DOMAIN_SETS)
FILE_SUFFIXES = (".pt", ".npy")

# Samples drawn for a toy set: large enough to behave as the infinite stream of gan_toy.py,
# small enough to build in milliseconds.
TOY_SIZE = 100_000

RING8_SCALE = 1.414
GRID25_SCALE = 2.828
SWISSROLL_SCALE = 7.5


@dataclass
class DataSet:
    """A data set held in memory.

    `data` is float32 [N, D] ("points") or [N, C, H, W] ("images"). `centres` and `std` are
    the mixture's mode centres [K, D] and per-coordinate std, both already divided by the set's
    scale, for the modes / high-quality metrics; None for sets without modes. `labels` [N]
    (int64 in 0..n_classes-1) is each row's class, `second` [N, ...] each row's counterpart in
    a second domain; None where the set has none.
    """

    name: str
    data: torch.Tensor
    kind: str
    centres: Optional[torch.Tensor] = None
    std: Optional[float] = None
    labels: Optional[torch.Tensor] = None
    second: Optional[torch.Tensor] = None

    def __post_init__(self) -> None:
        n = self.data.shape[0]
        for name in ("labels", "second"):
            extra = getattr(self, name)
            if extra is not None and extra.shape[0] != n:
                raise ValueError(
                    f"data {self.name!r}: {name} has {extra.shape[0]} rows, the data {n}"
                )

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[1:])

    @property
    def n_classes(self) -> Optional[int]:
        return None if self.labels is None else int(self.labels.max()) + 1

    def shard(self, rank: int, world_size: int) -> torch.Tensor:
        """The rows this rank trains on: every world_size-th row, starting at rank."""
        return self.data[rank::world_size]

    def shard_all(self, rank: int, world_size: int) -> DataSet:
        """This set restricted to the rows `shard` gives, labels and second domain included."""
        rows = slice(rank, None, world_size)
        return dataclasses.replace(
            self,
            data=self.data[rows],
            labels=None if self.labels is None else self.labels[rows],
            second=None if self.second is None else self.second[rows],
        )


def ring8_centres() -> torch.Tensor:
    """The 8 centres of ring8 after the division by 1.414."""
    k = torch.arange(8, dtype=torch.float64)
    angle = 2 * math.pi * k / 8
    return (2 * torch.stack([angle.cos(), angle.sin()], 1) / RING8_SCALE).float()


def grid25_centres() -> torch.Tensor:
    """The 25 centres (2i, 2j), i, j in -2..2, after the division by 2.828."""
    r = torch.arange(-2, 3, dtype=torch.float64) * 2
    gx, gy = torch.meshgrid(r, r, indexing="ij")
    return (torch.stack([gx.reshape(-1), gy.reshape(-1)], 1) / GRID25_SCALE).float()


def _mixture(
    centres: torch.Tensor, std: float, n: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(n samples, the index of the mode each was drawn from)."""
    idx = torch.randint(len(centres), (n,), generator=gen)
    noise = torch.randn(n, centres.shape[1], generator=gen, dtype=torch.float64) * std
    return (centres.double()[idx] + noise).float(), idx


def toy_set(name: str, n: int = TOY_SIZE, seed: int = 0) -> DataSet:
    """n samples of a toy set, seeded. The std is divided by the same scale as the centres."""
    gen = torch.Generator().manual_seed(seed)
    if name == "ring8":
        centres, std = ring8_centres(), 0.02 / RING8_SCALE
        data, modes = _mixture(centres, std, n, gen)
        return DataSet(name, data, "points", centres, std, labels=modes)
    if name == "grid25":
        centres, std = grid25_centres(), 0.05 / GRID25_SCALE
        data, modes = _mixture(centres, std, n, gen)
        return DataSet(name, data, "points", centres, std, labels=modes)
    if name == "swissroll":
        from sklearn.datasets import make_swiss_roll

        points, _ = make_swiss_roll(n_samples=n, noise=0.25, random_state=seed)
        data = torch.from_numpy(points[:, [0, 2]] / SWISSROLL_SCALE).float()
        return DataSet(name, data, "points")
    raise ValueError(f"data: unknown toy set {name!r}; expected one of {', '.join(TOY_SETS)}")


def digits_set() -> DataSet:
    """scikit-learn's 1,797 8x8 digits, pixel values 0..16 scaled to [-1, 1], N x 1 x 8 x 8,
    labelled with their digit."""
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.float32)
    data = torch.from_numpy(images / 8.0 - 1.0).unsqueeze(1)
    return DataSet("digits", data, "images", labels=digits_labels())


def sobel_edges(x: torch.Tensor) -> torch.Tensor:
    """The Sobel gradient magnitude of images [N, 1, H, W] in [-1, 1] (zero padding), rescaled
    so that the largest magnitude of the whole set is 1 and then mapped to [-1, 1]."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([kx, kx.t()]).unsqueeze(1)
    # Shift to [0, 2] first so the zero padding is the background's value.
    grad = torch.nn.functional.conv2d(x + 1.0, kernels, padding=1)
    magnitude = grad.square().sum(1, keepdim=True).sqrt()
    return 2.0 * magnitude / magnitude.max() - 1.0


def two_domain_set(name: str) -> DataSet:
    """The digits (domain A) paired row for row with an image made from each (domain B)."""
    digits = digits_set()
    x = digits.data
    if name == "digits-inverted":
        second = -x
    elif name == "digits-rotated":
        second = torch.rot90(x, 1, dims=(2, 3)).contiguous()
    elif name == "digits-edges":
        second = sobel_edges(x)
    else:
        raise ValueError(
            f"data: unknown two-domain set {name!r}; expected one of {', '.join(TWO_DOMAIN_SETS)}"
        )
    return dataclasses.replace(digits, name=name, second=second)


def digits_labels() -> torch.Tensor:
    from sklearn.datasets import load_digits

    return torch.from_numpy(load_digits().target.astype(np.int64))


def file_set(path: str) -> DataSet:
    """A user's tensor file: `.pt` (one tensor, loaded with weights_only=True) or `.npy`."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"data: no such file {path!r}")
    if path.endswith(".pt"):
        obj = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(obj, torch.Tensor):
            raise ValueError(
                f"data: {path!r} must hold a single tensor of shape N x D or N x C x H x W, "
                f"got a {type(obj).__name__}"
            )
        data = obj
    elif path.endswith(".npy"):
        array = np.load(path, allow_pickle=False)
        if array.dtype.kind not in "biuf":
            raise ValueError(f"data: {path!r} must hold a numeric array, got dtype {array.dtype}")
        data = torch.from_numpy(np.ascontiguousarray(array))
    else:
        raise ValueError(f"data: a file must end in .pt or .npy, got {path!r}")
    if data.dim() not in (2, 4):
        raise ValueError(
            f"data: {path!r} must hold a tensor of shape N x D or N x C x H x W, "
            f"got shape {list(data.shape)}"
        )
    if data.is_complex() or data.dtype == torch.bool:
        raise ValueError(f"data: {path!r} must hold real numbers, got dtype {data.dtype}")
    if data.shape[0] < 2 or data[0].numel() == 0:
        raise ValueError(
            f"data: {path!r} needs at least 2 non-empty samples, got shape {list(data.shape)}"
        )
    data = data.float().contiguous()
    if not torch.isfinite(data).all():
        raise ValueError(f"data: {path!r} contains NaN or Inf values")
    kind = "points" if data.dim() == 2 else "images"
    name = os.path.splitext(os.path.basename(path))[0]
    return DataSet(name, data, kind)


def load_data(spec: str, seed: int = 0, n: int = TOY_SIZE) -> DataSet:
    """The data set named by `spec`: a built-in name or a path to a .pt / .npy file."""
    if spec in TOY_SETS:
        return toy_set(spec, n=n, seed=seed)
    if spec == "digits":
        return digits_set()
    if spec in TWO_DOMAIN_SETS:
        return two_domain_set(spec)
    if spec.endswith(FILE_SUFFIXES):
        return file_set(spec)
    raise ValueError(
        f"data: expected one of {', '.join(BUILTIN_SETS)} or a path ending in .pt or .npy, "
        f"got {spec!r}"
    )


def reference_sample(spec: str, dataset: DataSet, n: int, seed: int) -> torch.Tensor:
    """Real samples for the distribution metrics: a fresh draw for a toy set (independent of
    the rows trained on), else the data set's first n rows."""
    if spec in TOY_SETS:
        return toy_set(spec, n=n, seed=seed + 99991).data
    return dataset.data[:n]
