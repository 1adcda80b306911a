"""mmd2: the squared maximum mean discrepancy between two batches of feature vectors under a
mixture of Gaussian (RBF) kernels (docs/math.md section 8).

Backward: with G(a, b) = sum_s exp(-||a - b||^2 / (2 s^2)) / s^2,
d/dx_m = 2 c_xy sum_j G(x_m, y_j) (x_m - y_j) - 2 c_xx sum_{j != m} G(x_m, x_j) (x_m - x_j),
and the same for y with the roles swapped.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from .. import reference
from ._checks import check_mmd2
from .registry import call_op, register_op

# MMD-GAN's bandwidths (Li et al. 2017).
DEFAULT_SIGMAS = (1.0, 2.0, 4.0, 8.0, 16.0)
ESTIMATORS = ("unbiased", "biased")


def _fake(x, y, sigmas, unbiased):
    check_mmd2(x, y, sigmas, unbiased)
    return x.new_empty((), dtype=reference.opmath_dtype(x.dtype))


def _fake_backward(grad, x, y, sigmas, unbiased):
    return torch.empty_like(x, memory_format=torch.contiguous_format), torch.empty_like(
        y, memory_format=torch.contiguous_format
    )


def _setup_context(ctx, inputs, output) -> None:
    x, y, sigmas, unbiased = inputs
    ctx.save_for_backward(x, y)
    ctx.params = (sigmas, unbiased)


def _make_backward(backward_op):
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        grad_x, grad_y = backward_op(grad, x, y, *ctx.params)
        return grad_x, grad_y, None, None

    return backward


register_op(
    "mmd2",
    fake=_fake,
    fake_backward=_fake_backward,
    make_backward=_make_backward,
    setup_context=_setup_context,
    reference_backward=reference.mmd2_backward,
)


def mmd2(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    estimator: str = "unbiased",
    impl: Optional[str] = None,
) -> torch.Tensor:
    """MMD^2 between the rows of x [B, D] and y [B', D] under the kernel
    k(a, b) = sum_s exp(-||a - b||^2 / (2 s^2)), s in `sigmas`:

        unbiased  sum_{i!=j} k(x_i, x_j) / (B (B-1)) + sum_{i!=j} k(y_i, y_j) / (B' (B'-1))
                  - 2 sum_{i,j} k(x_i, y_j) / (B B')
        biased    the same with the diagonals kept and B^2, B'^2 as the divisors.

    The fused kernels tile the pairwise distances and reduce them where they are computed: no
    B x B' matrix is ever stored (O((B + B') D) extra memory). Distances and kernels are
    computed in float32 for half types (float64 for float64); the result has that dtype.
    Differentiable in x and y, to any order. The unbiased estimate needs B, B' >= 2 and can be
    slightly negative when the two samples match.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"mmd2: estimator must be 'unbiased' or 'biased', got {estimator!r}")
    if isinstance(sigmas, (int, float)):
        sigmas = (sigmas,)
    bandwidths = [float(s) for s in sigmas]
    unbiased = estimator == "unbiased"
    return call_op(
        "mmd2",
        impl,
        x,
        (x, y, bandwidths, unbiased),
        lambda: check_mmd2(x, y, bandwidths, unbiased),
    )
