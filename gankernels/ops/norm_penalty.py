"""norm_penalty: the per-sample gradient-norm penalty inside the critic's double backward.

n_i = ||inv_scale * g_i||_2 over all non-batch dims, P = weight / B * sum_i phi(n_i - target),
phi(d) = d^2 (two-sided) or max(d, 0)^2 (one-sided). Backward (docs/math.md section 2):
dP/dg_ij = weight / B * phi'(n_i - target) * inv_scale^2 * g_ij / n_i, and 0 on a zero row.
"""

from __future__ import annotations

from typing import Optional

import torch

from .. import reference
from ._checks import check_norm_penalty
from .registry import call_op, register_op


def _fake(grad, target, weight, one_sided, inv_scale):
    check_norm_penalty(grad, target, weight, inv_scale)
    opmath = reference.opmath_dtype(grad.dtype)
    return grad.new_empty((), dtype=opmath), grad.new_empty((grad.shape[0],), dtype=opmath)


def _fake_backward(grad_loss, grad_norms, grad, norms, target, weight, one_sided, inv_scale):
    return torch.empty_like(grad)


def _setup_context(ctx, inputs, output) -> None:
    grad, target, weight, one_sided, inv_scale = inputs
    ctx.save_for_backward(grad, output[1])
    ctx.params = (target, weight, one_sided, inv_scale)


def _make_backward(backward_op):
    def backward(ctx, grad_loss, grad_norms):
        grad, norms = ctx.saved_tensors
        return backward_op(grad_loss, grad_norms, grad, norms, *ctx.params), None, None, None, None

    return backward


register_op(
    "norm_penalty",
    fake=_fake,
    fake_backward=_fake_backward,
    make_backward=_make_backward,
    setup_context=_setup_context,
    reference_backward=reference.norm_penalty_backward,
)


def norm_penalty(
    grad: torch.Tensor,
    target: float = 1.0,
    weight: float = 10.0,
    one_sided: bool = False,
    inv_scale: float = 1.0,
    *,
    impl: Optional[str] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, norms) with norms_i = ||inv_scale * grad_i||_2 and
    P = weight / B * sum_i phi(norms_i - target), phi(d) = d^2 or max(d, 0)^2 if one_sided.

    Norms accumulate in float32 (float64 for float64 input); P and norms have that dtype.
    A zero row contributes a zero gradient, never NaN. A row holding NaN (inf) has a NaN (inf)
    norm, so P is NaN (inf), and that row's gradient is NaN (inf / inf), as the reference's;
    the other rows keep their norms and gradients.
    """
    args = (grad, float(target), float(weight), bool(one_sided), float(inv_scale))
    return call_op(
        "norm_penalty",
        impl,
        grad,
        args,
        lambda: check_norm_penalty(grad, target, weight, inv_scale),
    )
