"""Small generators and critics sized for the built-in data.

Points (N x D): ReLU MLPs as in WGAN-GP's gan_toy.py (there 3 hidden layers of 512).
Images (N x C x H x W with H, W divisible by 4): a two-layer transposed-conv generator and a
two-layer strided-conv critic with LeakyReLU; other image sizes fall back to MLPs on the
flattened pixels. No critic has BatchNorm: a per-sample gradient penalty is meaningless when a
sample's output depends on the rest of the batch (WGAN-GP section 4). An "autoencoder" critic
(BEGAN) maps x to a reconstruction of x's shape; a "features" critic (MMD-GAN) maps x to
`FEATURES` numbers, the embedding in which the kernel two-sample statistic is taken. The
generator may be wider than the critic (`generator_hidden`): on the toy sets its width limits
how tight the modes get, while a wider critic costs more (five penalised steps per generator
step) and gains nothing (see `gankernels.train.config.default_preset`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass
from typing import Any, Optional

import torch
from torch import nn

CRITIC_KINDS = ("score", "autoencoder", "features")
# The width of a "features" critic's output: MMD GAN's (Binkowski et al. 2018) critics end in
# 16 features for their image models, and 16 is ample for the 2-D toy sets.
FEATURES = 16


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the models from a checkpoint (primitives only)."""

    sample_shape: tuple[int, ...]
    z_dim: int
    hidden: int
    depth: int
    critic_kind: str = "score"
    bounded: bool = False  # generator output through tanh (data in [-1, 1])
    generator_hidden: Optional[int] = None  # the generator's width; None: `hidden`

    @property
    def generator_width(self) -> int:
        return self.hidden if self.generator_hidden is None else self.generator_hidden

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sample_shape"] = list(self.sample_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        d = dict(d)
        d["sample_shape"] = tuple(d["sample_shape"])
        return cls(**d)

    @property
    def is_conv(self) -> bool:
        s = self.sample_shape
        return len(s) == 3 and s[1] % 4 == 0 and s[2] % 4 == 0


def _mlp(sizes: list[int], act: type[nn.Module]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return layers


class MLPGenerator(nn.Module):
    """z [B, z_dim] -> x [B, *sample_shape] through `depth` hidden ReLU layers of
    `spec.generator_width` units."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.sample_shape = spec.sample_shape
        out = math.prod(spec.sample_shape)
        layers = _mlp([spec.z_dim] + [spec.generator_width] * spec.depth + [out], nn.ReLU)
        if spec.bounded:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).reshape(z.shape[0], *self.sample_shape)


def _critic_outputs(spec: ModelSpec) -> int:
    return FEATURES if spec.critic_kind == "features" else 1


def _as_scores(out: torch.Tensor, outputs: int) -> torch.Tensor:
    """[B, 1] -> [B] for a score critic; a features critic keeps [B, FEATURES]."""
    return out.squeeze(1) if outputs == 1 else out


class MLPCritic(nn.Module):
    """x [B, *sample_shape] -> score [B] (features [B, FEATURES] for a "features" critic)
    through `depth` hidden ReLU layers (no normalisation)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        d = math.prod(spec.sample_shape)
        self.outputs = _critic_outputs(spec)
        self.net = nn.Sequential(*_mlp([d] + [spec.hidden] * spec.depth + [self.outputs], nn.ReLU))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _as_scores(self.net(x.reshape(x.shape[0], -1)), self.outputs)


class ConvGenerator(nn.Module):
    """z -> Linear -> [2h, H/4, W/4] -> ConvT x2 (stride 2) -> [C, H, W]."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        c, h, w = spec.sample_shape
        width = max(spec.generator_width // 4, 16)
        self.start = (2 * width, h // 4, w // 4)
        self.fc = nn.Sequential(nn.Linear(spec.z_dim, math.prod(self.start)), nn.ReLU())
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(width, c, 4, stride=2, padding=1),
        ]
        if spec.bounded:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).reshape(z.shape[0], *self.start))


class ConvCritic(nn.Module):
    """[C, H, W] -> Conv x2 (stride 2, LeakyReLU 0.2, no normalisation) -> Linear -> score [B]
    (features [B, FEATURES] for a "features" critic)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        c, h, w = spec.sample_shape
        width = max(spec.hidden // 4, 16)
        self.outputs = _critic_outputs(spec)
        self.net = nn.Sequential(
            nn.Conv2d(c, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(2 * width * (h // 4) * (w // 4), self.outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _as_scores(self.net(x), self.outputs)


class AutoencoderCritic(nn.Module):
    """BEGAN's critic: x -> ELU MLP encoder -> code -> ELU MLP decoder -> reconstruction of x."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.sample_shape = spec.sample_shape
        d = math.prod(spec.sample_shape)
        code = max(min(spec.hidden // 8, 64), 2)
        half = max(spec.depth // 2, 1)
        self.encoder = nn.Sequential(*_mlp([d] + [spec.hidden] * half + [code], nn.ELU))
        self.decoder = nn.Sequential(*_mlp([code] + [spec.hidden] * half + [d], nn.ELU))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        return self.decoder(nn.functional.elu(self.encoder(flat))).reshape(x.shape)


def build_models(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    """(generator, critic) for `spec`."""
    if spec.critic_kind not in CRITIC_KINDS:
        raise ValueError(f"critic_kind must be one of {CRITIC_KINDS}, got {spec.critic_kind!r}")
    if spec.z_dim < 1 or spec.hidden < 1 or spec.depth < 1 or spec.generator_width < 1:
        raise ValueError(
            f"z_dim, hidden, generator_hidden and depth must be >= 1, got {spec.z_dim}, "
            f"{spec.hidden}, {spec.generator_hidden}, {spec.depth}"
        )
    generator: nn.Module = ConvGenerator(spec) if spec.is_conv else MLPGenerator(spec)
    if spec.critic_kind == "autoencoder":
        critic: nn.Module = AutoencoderCritic(spec)
    elif spec.is_conv:
        critic = ConvCritic(spec)
    else:
        critic = MLPCritic(spec)
    return generator, critic


# --- building blocks for systems (gankernels.variants.System) -----------------------------------


class ConditionalGenerator(nn.Module):
    """G(z, y): the trainer's generator for `spec` fed [z, one_hot(y)] (Mirza and Osindero
    2014), so that one network draws every class."""

    def __init__(self, spec: ModelSpec, n_classes: int) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        self.n_classes = n_classes
        inner = dataclasses.replace(spec, z_dim=spec.z_dim + n_classes)
        self.net = build_models(inner)[0]

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        onehot = nn.functional.one_hot(labels, self.n_classes).to(z.dtype)
        return self.net(torch.cat([z, onehot], 1))


def critic_trunk(spec: ModelSpec) -> tuple[nn.Module, int]:
    """(the trainer's critic for `spec` without its output layer, the width of its features):
    the shared body of critics with several heads (a projection, a classifier)."""
    critic = build_models(dataclasses.replace(spec, critic_kind="score"))[1]
    body, head = critic.net[:-1], critic.net[-1]
    if not spec.is_conv:
        body = nn.Sequential(nn.Flatten(), *body)
    return body, head.in_features


def balanced_labels(n: int, n_classes: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """0, 1, ..., K-1, 0, 1, ...: the labels conditional samples are drawn for (sample i has
    class i mod K)."""
    return torch.arange(n, device=device) % n_classes


@torch.no_grad()
def generate_conditional(
    generator: nn.Module,
    z_dim: int,
    labels: torch.Tensor,
    seed: int,
    device: torch.device | str = "cpu",
    chunk: int = 1024,
) -> torch.Tensor:
    """G(z, labels[i]) for each label, z ~ N(0, I) from a generator seeded with `seed` (the same
    stream as `generate`), in eval mode; CPU float32."""
    was_training = generator.training
    generator.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    chunks = []
    for start in range(0, labels.shape[0], chunk):
        y = labels[start : start + chunk].to(device)
        z = torch.randn(y.shape[0], z_dim, generator=gen, device=device)
        chunks.append(generator(z, y).float().cpu())
    generator.train(was_training)
    return torch.cat(chunks)


@torch.no_grad()
def generate(
    generator: nn.Module,
    z_dim: int,
    n: int,
    seed: int,
    device: torch.device | str = "cpu",
    chunk: int = 1024,
) -> torch.Tensor:
    """n samples G(z), z ~ N(0, I) drawn from a generator seeded with `seed`, in eval mode
    (the module's mode is restored); returned as CPU float32."""
    was_training = generator.training
    generator.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    chunks = []
    for start in range(0, n, chunk):
        z = torch.randn(min(chunk, n - start), z_dim, generator=gen, device=device)
        chunks.append(generator(z).float().cpu())
    generator.train(was_training)
    return torch.cat(chunks)
