"""gankernels: fused kernels for the memory-bound core of GAN training, as torch ops."""

from __future__ import annotations

__version__ = "0.1.0"

from ._extension import STATUS as _STATUS  # noqa: E402  (loads gankernels._C, or warns once)
from . import reference  # noqa: E402
from .ops import adversarial_loss, clip_, gp_interpolate, norm_penalty  # noqa: E402
from .info import backends  # noqa: E402

__all__ = [
    "__version__",
    "adversarial_loss",
    "backends",
    "clip_",
    "gp_interpolate",
    "norm_penalty",
    "reference",
]
