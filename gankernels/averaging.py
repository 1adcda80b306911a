"""The moving average of a generator's weights, in one fused call (docs/math.md section 4)."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import nn

from .ops import ema_ as _ema_op

__all__ = ["ema_"]

Weights = Union[nn.Module, Sequence[torch.Tensor]]


def _pairs(target: Weights, source: Weights) -> tuple[list, list, list]:
    """(target params, source params, (target buffer, source buffer) pairs), matched by name."""
    fn = "ema_"
    if isinstance(target, nn.Module) != isinstance(source, nn.Module):
        raise TypeError(
            f"{fn}: target and source must both be modules or both be lists of tensors, got "
            f"{type(target).__name__} and {type(source).__name__}"
        )
    if not isinstance(target, nn.Module):
        if isinstance(target, torch.Tensor) or isinstance(source, torch.Tensor):
            raise TypeError(f"{fn}: pass lists of tensors (or modules), not a single tensor")
        return list(target), list(source), []
    params_t, params_s = dict(target.named_parameters()), dict(source.named_parameters())
    if params_t.keys() != params_s.keys():
        missing = sorted(params_s.keys() - params_t.keys())
        extra = sorted(params_t.keys() - params_s.keys())
        raise ValueError(
            f"{fn}: target and source must have the same parameters; target lacks {missing}, "
            f"has extra {extra}"
        )
    buffers_t, buffers_s = dict(target.named_buffers()), dict(source.named_buffers())
    if buffers_t.keys() != buffers_s.keys():
        raise ValueError(f"{fn}: target and source must have the same buffers")
    names = list(params_s)
    pairs = [(buffers_t[n], buffers_s[n]) for n in buffers_s]
    return [params_t[n] for n in names], [params_s[n] for n in names], pairs


def ema_(
    target: Weights, source: Weights, decay: float = 0.999, *, impl: Optional[str] = None
) -> None:
    """The exponential moving average of `source`'s weights, in place in `target`:

        t <- decay * t + (1 - decay) * s

    (computed as torch.lerp(t, s, 1 - decay) computes it, exact at decay 0 and 1)

    for every parameter, in one fused call (one launch for a typical generator on CUDA), in
    float32 for half types. `target` and `source` are two modules of one architecture (the
    parameters are paired by name, and the buffers, such as BatchNorm's running statistics, are
    copied from `source`, as StyleGAN's and BigGAN's trainers do), or two lists of tensors of
    the same shapes and dtypes. Typical decay: 0.999 (the default) to 0.9999. Nothing is
    recorded in autograd; the targets' version counters are bumped.
    """
    targets, sources, buffers = _pairs(target, source)
    if targets:
        _ema_op(targets, sources, decay, impl=impl)
    elif not buffers:
        _ema_op(targets, sources, decay, impl=impl)  # raises: nothing to average
    with torch.no_grad():
        for t, s in buffers:
            t.copy_(s)
