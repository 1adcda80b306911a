"""clip_: in-place clamp of a whole parameter list to [-c, c] in one call (docs/math.md
section 4).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from ._checks import check_clip
from .registry import call_op, register_op


def _fake(params, c):
    check_clip(params, c)
    return params[0].new_empty((), dtype=torch.int64)


register_op("clip_", fake=_fake)


def clip_(params: Sequence[torch.Tensor], c: float, *, impl: Optional[str] = None) -> torch.Tensor:
    """w <- clamp(w, -c, c) for every tensor in `params`, in place, in one fused call.

    Returns the int64 count of elements left at +-c (c rounded to each tensor's dtype), on the
    parameters' device: reading it is the only host synchronisation. NaN stays NaN.
    """
    if not isinstance(params, (torch.Tensor, list, tuple)):  # a lone tensor must reach check_clip
        params = list(params)
    if isinstance(params, torch.Tensor) or not params or not isinstance(c, (int, float)):
        check_clip(params, c)  # raises: the checks that need no look at each tensor
    # No no_grad block needed: every backend records nothing and bumps the version counters
    # (the compiled op in its C++ autograd kernel, csrc/autograd/clip.cpp).
    return call_op("clip_", impl, params[0], (params, float(c)), lambda: check_clip(params, c))
