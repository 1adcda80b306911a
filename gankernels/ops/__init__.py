"""The Python face of the gankernels ops: checks, backend choice, autograd and fake kernels."""

from ._backend import IMPLS, auto_choice, available, resolve
from .adversarial_loss import adversarial_loss
from .clip import clip_
from .ema import ema_
from .gp_interpolate import gp_interpolate
from .mmd2 import mmd2
from .norm_penalty import norm_penalty

OP_NAMES = ("gp_interpolate", "norm_penalty", "adversarial_loss", "clip_", "ema_", "mmd2")

__all__ = [
    "IMPLS",
    "OP_NAMES",
    "adversarial_loss",
    "auto_choice",
    "available",
    "clip_",
    "ema_",
    "gp_interpolate",
    "mmd2",
    "norm_penalty",
    "resolve",
]
