"""The timed callables of the single ops, one per implementation: forward + backward of the
differentiable ops (eager reference, `torch.compile` of it, a fused backend, the copy floor) and
one clip of a parameter list (the `clamp_` loop, the `_foreach` pair, the reference, the compiled
loop, a fused backend).

The eager baseline of every op is `gankernels.reference`, the oracle of the tests.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch

import gankernels
import gankernels.ops
from gankernels import reference

from ._cases import CLIP_C, OpCase
from ._measure import copy_floor, synchronizer


def forward_of(op: str, impl: str) -> Callable:
    """The forward of `op` for one implementation: eager reference, compiled reference, fused."""
    if impl == "eager":
        return getattr(reference, op)
    if impl == "compile":
        return compiled_reference(op)
    public = getattr(gankernels.ops, op)
    return functools.partial(public, impl=impl)


@functools.cache
def compiled_reference(op: str) -> Callable:
    """torch.compile of the reference: static shapes (one graph per size, as a training loop
    has), full graph so a break is an error rather than a silently eager fallback."""
    return torch.compile(getattr(reference, op), dynamic=False, fullgraph=True)


def op_fwd_bwd(case: OpCase, impl: str, device: str) -> Callable[[], None]:
    """One forward and one first-order backward of `case` (autograd.grad, so no .grad
    accumulation pass is timed), or the copy of the same number of bytes for impl "copy"."""
    sync = synchronizer(device)
    if impl == "copy":
        return copy_floor(case.bytes_moved, device, sync)
    forward = forward_of(case.op, impl)
    args, inputs, grad_out = case.args, case.grad_inputs, case.grad_out

    def run() -> None:
        out = forward(*args)
        if isinstance(out, tuple):
            out = out[0]  # norm_penalty: (loss, norms); the penalty's gradient is the one taken
        torch.autograd.grad(out, inputs, grad_out)
        sync()

    return run


# --- clip ---------------------------------------------------------------------------------------


def clip_fn(impl: str, params: list[torch.Tensor], device: str) -> Callable[[], None]:
    """One clip of the whole list to [-c, c]: the per-parameter loop (the eager baseline, as the
    WGAN reference code writes it), the foreach pair, the reference (which also counts the
    saturated elements, as the fused op does), the compiled loop, or a fused backend."""
    sync = synchronizer(device)
    c = CLIP_C
    if impl == "loop":

        def run() -> None:
            for p in params:
                p.clamp_(-c, c)
            sync()
    elif impl == "foreach":

        def run() -> None:
            torch._foreach_clamp_min_(params, -c)
            torch._foreach_clamp_max_(params, c)
            sync()
    elif impl == "eager+count":

        def run() -> None:
            reference.clip_(params, c)
            sync()
    elif impl == "compile":
        compiled = torch.compile(_clamp_loop, dynamic=False, fullgraph=True)

        def run() -> None:
            compiled(params, c)
            sync()
    else:

        def run() -> None:
            gankernels.ops.clip_(params, c, impl=impl)
            sync()

    return run


def _clamp_loop(params: list[torch.Tensor], c: float) -> None:
    for p in params:
        p.clamp_(-c, c)


# --- ema ----------------------------------------------------------------------------------------

EMA_DECAY = 0.999


def ema_fn(
    impl: str, target: list[torch.Tensor], source: list[torch.Tensor], device: str
) -> Callable[[], None]:
    """One moving-average update of the whole list: the per-parameter `lerp_` loop (the eager
    baseline, as GAN trainers write it), `torch._foreach_lerp_`, or a fused backend."""
    sync = synchronizer(device)
    w = 1.0 - EMA_DECAY
    if impl == "loop":

        def run() -> None:
            with torch.no_grad():
                for t, s in zip(target, source):
                    t.lerp_(s, w)
            sync()
    elif impl == "foreach":

        def run() -> None:
            with torch.no_grad():
                torch._foreach_lerp_(target, source, w)
            sync()
    else:

        def run() -> None:
            gankernels.ops.ema_(target, source, EMA_DECAY, impl=impl)
            sync()

    return run
