"""Triton kernels for every gankernels op, one file per op (kernels, launcher, registration).

Nothing here imports triton until an op is first asked for, so `import gankernels` stays quiet
and fast on machines without a GPU. Under TRITON_INTERPRET=1 the kernels run on CPU tensors.
"""

from __future__ import annotations

import importlib
from typing import Callable

_MODULES = {
    "gp_interpolate": "gp_interpolate",
    "norm_penalty": "norm_penalty",
    "adversarial_loss": "adversarial_loss",
    "clip_": "clip",
}


def op(name: str) -> Callable:
    """torch.ops.gankernels.<name>_triton, registering it (and its autograd) on first use."""
    importlib.import_module(f"{__name__}.{_MODULES[name]}")
    import torch

    return getattr(torch.ops.gankernels, f"{name}_triton")
