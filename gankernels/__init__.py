"""gankernels: fused kernels for the memory-bound core of GAN training, as torch ops."""

from __future__ import annotations

__version__ = "0.1.0"

# _extension loads gankernels._C (or warns once) before anything registers on its ops;
# variants is the variant registry, whose plugins (entry points) load on first use, not here.
from . import _extension, reference, variants  # noqa: E402, F401
from .averaging import ema_  # noqa: E402
from .clipping import clip_weights_  # noqa: E402
from .info import backends  # noqa: E402
from .losses import LOSS_KINDS, LS_LABELS, discriminator_loss, generator_loss  # noqa: E402
from .ops import adversarial_loss, clip_, gp_interpolate, mmd2, norm_penalty  # noqa: E402
from .penalties import (  # noqa: E402
    dragan_penalty,
    gradient_penalty,
    input_gradient_penalty,
    r1_penalty,
    r2_penalty,
)
from .regularizers import LeCam  # noqa: E402

__all__ = [
    "LeCam",
    "LOSS_KINDS",
    "LS_LABELS",
    "__version__",
    "adversarial_loss",
    "backends",
    "clip_",
    "clip_weights_",
    "discriminator_loss",
    "dragan_penalty",
    "ema_",
    "generator_loss",
    "gp_interpolate",
    "gradient_penalty",
    "input_gradient_penalty",
    "mmd2",
    "norm_penalty",
    "r1_penalty",
    "r2_penalty",
    "reference",
    "variants",
]
