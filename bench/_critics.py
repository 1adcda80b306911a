"""The critics the whole-step and clip benchmarks use, their input batches, and the parameter
lists to clip."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from gankernels import testing

# --- critics ----------------------------------------------------------------------------------


def mlp3x512(in_features: int = 2) -> torch.nn.Module:
    """The toy critic of WGAN-GP's gan_toy.py: three hidden layers of 512 with ReLU."""
    nn = torch.nn
    return nn.Sequential(
        nn.Linear(in_features, 512),
        nn.ReLU(),
        nn.Linear(512, 512),
        nn.ReLU(),
        nn.Linear(512, 512),
        nn.ReLU(),
        nn.Linear(512, 1),
        nn.Flatten(0),
    )


def dcgan32() -> torch.nn.Module:
    """A DCGAN critic for 3x32x32 images without batch norm (WGAN-GP forbids it in the critic)."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 64, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(128, 256, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(256, 1, 4, 1, 0),
        nn.Flatten(0),
    )


def dcgan64() -> torch.nn.Module:
    """The DCGAN critic for 3x64x64 images used by the WGAN reference code (with batch norm)."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 64, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1, bias=False),
        nn.BatchNorm2d(128),
        nn.LeakyReLU(0.2),
        nn.Conv2d(128, 256, 4, 2, 1, bias=False),
        nn.BatchNorm2d(256),
        nn.LeakyReLU(0.2),
        nn.Conv2d(256, 512, 4, 2, 1, bias=False),
        nn.BatchNorm2d(512),
        nn.LeakyReLU(0.2),
        nn.Conv2d(512, 1, 4, 1, 0, bias=False),
        nn.Flatten(0),
    )


CRITICS: dict[str, Callable[[], torch.nn.Module]] = {
    "mlp3x512": mlp3x512,
    "dcgan32": dcgan32,
    "dcgan64": dcgan64,
}
SAMPLE_SHAPES = {"mlp3x512": (2,), "dcgan32": (3, 32, 32), "dcgan64": (3, 64, 64)}


def critic(name: str, device: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return CRITICS[name]().to(device)


def batch_of(model: str, batch: int, device: str, seed: int) -> torch.Tensor:
    """A batch of `model`'s input shape from the shared factory."""
    return testing.make((batch, *SAMPLE_SHAPES[model]), torch.float32, device, seed=seed)


# --- parameter lists to clip ------------------------------------------------------------------


def clip_params(name: str, device: str, dtype: torch.dtype) -> list[torch.Tensor]:
    """A parameter list to clip: a real critic's (DCGAN-64, the 3x512 MLP) or 100 small tensors
    of 64..512 elements, drawn by the shared factory at scale 0.02 so some sit beyond c=0.01."""
    if name == "small100":
        sizes = [64 * (1 + i % 8) for i in range(100)]
    else:
        sizes = [p.numel() for p in CRITICS[name]().parameters()]
    return [
        testing.make((n,), dtype, device, seed=100 + i, scale=0.02) for i, n in enumerate(sizes)
    ]


def clip_label(name: str, params: Sequence[torch.Tensor]) -> str:
    numel = sum(p.numel() for p in params)
    return f"{name} ({len(params)} tensors, {numel / 1e6:.2f}M)"
