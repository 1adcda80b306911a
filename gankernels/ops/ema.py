"""ema_: in-place exponential moving average of a whole list of weights in one call (docs/math.md
section 4).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from ._checks import check_ema
from .registry import call_op, register_op


def _fake(target, source, decay):
    check_ema(target, source, decay)


register_op("ema_", fake=_fake)


def ema_(
    target: Sequence[torch.Tensor],
    source: Sequence[torch.Tensor],
    decay: float,
    *,
    impl: Optional[str] = None,
) -> None:
    """t <- t + (1 - decay) * (s - t) for every pair of `target` and `source`, in place, in one
    fused call; computed in float32 for half types (float64 for float64). Records nothing in
    autograd and bumps the targets' version counters, as an in-place update under no_grad does.
    """
    if not isinstance(target, (torch.Tensor, list, tuple)):
        target = list(target)
    if not isinstance(source, (torch.Tensor, list, tuple)):
        source = list(source)
    if (
        isinstance(target, torch.Tensor)
        or isinstance(source, torch.Tensor)
        or not target
        or len(target) != len(source)
        or not isinstance(decay, (int, float))
    ):
        check_ema(target, source, decay)  # raises: the checks that need no look at each tensor
    call_op(
        "ema_",
        impl,
        target[0],
        (list(target), list(source), float(decay)),
        lambda: check_ema(target, source, decay),
    )
