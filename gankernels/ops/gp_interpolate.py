"""gp_interpolate: x_hat = eps * real + (1 - eps) * fake, one eps per sample (docs/math.md
section 1).

Backward: d/dreal = eps * g, d/dfake = (1 - eps) * g, d/deps_i = sum_j g_ij (real_ij - fake_ij).
"""

from __future__ import annotations

from typing import Optional

import torch

from .. import reference
from ._checks import check_gp_interpolate
from .registry import call_op, register_op


def _fake(real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    check_gp_interpolate(real, fake, eps)
    return torch.empty_like(real)


def _fake_backward(grad, eps, real, fake):
    return torch.empty_like(grad), torch.empty_like(grad), torch.empty_like(eps)


def _setup_context(ctx, inputs, output) -> None:
    real, fake, eps = inputs
    # real and fake are only read for eps's gradient: keep them alive only when it is wanted.
    need_eps = eps.requires_grad
    ctx.save_for_backward(eps, real if need_eps else None, fake if need_eps else None)


def _make_backward(backward_op):
    def backward(ctx, grad):
        eps, real, fake = ctx.saved_tensors
        grad_real, grad_fake, grad_eps = backward_op(grad, eps, real, fake)
        return grad_real, grad_fake, grad_eps if real is not None else None

    return backward


register_op(
    "gp_interpolate",
    fake=_fake,
    fake_backward=_fake_backward,
    make_backward=_make_backward,
    setup_context=_setup_context,
    reference_backward=reference.gp_interpolate_backward,
)


def gp_interpolate(
    real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor, *, impl: Optional[str] = None
) -> torch.Tensor:
    """x_hat_i = eps_i * real_i + (1 - eps_i) * fake_i for each sample i; eps has shape [B].

    Differentiable in real, fake and eps, to any order. Computed in float32 for half types.
    NaN and Inf follow torch's arithmetic: a NaN input gives NaN there, and an infinite input
    with eps_i = 0 (real) or 1 (fake) gives inf * 0 = NaN, as the reference does.
    """
    return call_op(
        "gp_interpolate",
        impl,
        real,
        (real, fake, eps),
        lambda: check_gp_interpolate(real, fake, eps),
    )
