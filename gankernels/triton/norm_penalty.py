"""Triton norm_penalty: the per-sample gradient-norm penalty inside the double backward.

Forward (docs/math.md section 2): n_i = ||inv_scale * g_i||_2, P = weight / B * sum_i phi(n_i - K),
phi(d) = d^2, or max(d, 0)^2 when one_sided. Squares accumulate in float32 (float64 for float64
input) per [ROWS, BLOCK_N] tile; one small single-program kernel then adds the tile partials in a
fixed order, takes the roots and reduces the loss (deterministic, no atomics).

Backward, one elementwise pass: dL/dg_ij = c_i * inv_scale^2 * g_ij / n_i with
c_i = grad_loss * weight / B * phi'(n_i - K) + grad_norms_i, and 0 where n_i = 0; for K = 0 the
ratio phi'(n) / n is exactly 2. grad_loss is read on the device, never with .item().
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from ._common import (
    conform_rows,
    define,
    launchable,
    row_tiling,
    rows_of,
    rows_workspace,
    sample_key,
    triton_opmath,
    warps_for,
)

FINISH_BLOCK = 1024


@triton.jit
def _sumsq_kernel(
    g_ptr,
    part_ptr,
    B,
    N,
    g_rs,
    ITERS,
    NBLK,
    inv_scale: tl.float64,
    ROWS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    OPMATH: tl.constexpr,
):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    row_mask = rows < B
    rows = rows.to(tl.int64)
    s = tl.full([], inv_scale, OPMATH)
    col0 = tl.program_id(1) * ITERS * BLOCK_N
    acc = tl.zeros([ROWS, BLOCK_N], OPMATH)
    for k in range(ITERS):
        cols = col0 + k * BLOCK_N + tl.arange(0, BLOCK_N)
        mask = row_mask[:, None] & (cols < N)[None, :]
        x = tl.load(g_ptr + rows[:, None] * g_rs + cols[None, :], mask=mask).to(OPMATH) * s
        acc += x * x
    tl.store(part_ptr + rows * NBLK + tl.program_id(1), tl.sum(acc, axis=1), mask=row_mask)


@triton.jit
def _finish_kernel(
    part_ptr,
    norms_ptr,
    loss_ptr,
    B,
    NBLK,
    target: tl.float64,
    weight_over_b: tl.float64,
    ONE_SIDED: tl.constexpr,
    BLOCK_B: tl.constexpr,
    OPMATH: tl.constexpr,
):
    K = tl.full([], target, OPMATH)
    total = tl.zeros([BLOCK_B], OPMATH)
    for start in range(0, B, BLOCK_B):
        rows = start + tl.arange(0, BLOCK_B)
        mask = rows < B
        rows = rows.to(tl.int64)
        ss = tl.zeros([BLOCK_B], OPMATH)
        for k in range(NBLK):
            ss += tl.load(part_ptr + rows * NBLK + k, mask=mask, other=0.0)
        if OPMATH == tl.float64:
            n = tl.sqrt(ss)
        else:
            n = tl.sqrt_rn(ss)  # IEEE-rounded, unlike the default approximate root
        tl.store(norms_ptr + rows, n, mask=mask)
        d = n - K
        if ONE_SIDED:
            d = tl.maximum(d, 0.0)
        total += tl.where(mask, d * d, 0.0)
    tl.store(loss_ptr, tl.full([], weight_over_b, OPMATH) * tl.sum(total, axis=0))


@triton.jit
def _backward_kernel(
    gl_ptr,
    gn_ptr,
    g_ptr,
    n_ptr,
    out_ptr,
    B,
    N,
    g_rs,
    out_rs,
    gn_stride,
    n_stride,
    ITERS,
    target: tl.float64,
    weight_over_b: tl.float64,
    inv_scale: tl.float64,
    HAS_GN: tl.constexpr,
    ONE_SIDED: tl.constexpr,
    TARGET_ZERO: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    OPMATH: tl.constexpr,
):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    row_mask = rows < B
    rows = rows.to(tl.int64)
    s = tl.full([], inv_scale, OPMATH)
    coef = tl.load(gl_ptr).to(OPMATH) * tl.full([], weight_over_b, OPMATH)
    n = tl.load(n_ptr + rows * n_stride, mask=row_mask, other=1.0).to(OPMATH)
    # As the reference: a zero row has gradient 0; a NaN or inf norm propagates (inf / inf).
    is_zero = n == 0.0
    safe_n = tl.where(is_zero, 1.0, n)
    d = n - tl.full([], target, OPMATH)
    if ONE_SIDED:
        d = tl.maximum(d, 0.0)
    ratio = tl.where(is_zero, 0.0, 2.0 * d / safe_n)  # phi'(n - K) / n
    if TARGET_ZERO:
        # phi'(n) / n = 2n / n = 2 (also one-sided, as n >= 0): no division for finite n.
        ratio = tl.where((n - n) == 0.0, 2.0, ratio)
    ratio = coef * ratio
    if HAS_GN:
        gn = tl.load(gn_ptr + rows * gn_stride, mask=row_mask, other=0.0).to(OPMATH)
        ratio += tl.where(is_zero, 0.0, gn / safe_n)
    scale = (ratio * s * s)[:, None]
    col0 = tl.program_id(1) * ITERS * BLOCK_N
    for k in range(ITERS):
        cols = col0 + k * BLOCK_N + tl.arange(0, BLOCK_N)
        mask = row_mask[:, None] & (cols < N)[None, :]
        g = tl.load(g_ptr + rows[:, None] * g_rs + cols[None, :], mask=mask).to(OPMATH)
        tl.store(
            out_ptr + rows[:, None] * out_rs + cols[None, :],
            (scale * g).to(out_ptr.dtype.element_ty),
            mask=mask,
        )


def _forward(
    grad: torch.Tensor, target: float, weight: float, one_sided: bool, inv_scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    opmath = torch.float64 if grad.dtype == torch.float64 else torch.float32
    b, n = rows_of(grad)
    loss = grad.new_empty((), dtype=opmath)
    norms = grad.new_empty((b,), dtype=opmath)
    if sample_key(grad) is None:
        grad = grad.contiguous()
    tl_opmath = triton_opmath(grad.dtype)
    rows, block_n, iters, nblk = row_tiling(b, n)
    if n == 0:
        nblk = 1
        partials = grad.new_zeros((b, 1), dtype=opmath)
    else:
        partials = grad.new_empty((b, nblk), dtype=opmath)
    if launchable(grad):
        if n > 0:
            wrap_triton(_sumsq_kernel)[(triton.cdiv(b, rows), nblk)](
                grad,
                partials,
                b,
                n,
                grad.stride(0),
                iters,
                nblk,
                inv_scale,
                ROWS=rows,
                BLOCK_N=block_n,
                OPMATH=tl_opmath,
                num_warps=warps_for(rows * block_n),
            )
        wrap_triton(_finish_kernel)[(1,)](
            partials,
            norms,
            loss,
            b,
            nblk,
            target,
            weight / b,
            ONE_SIDED=one_sided,
            BLOCK_B=FINISH_BLOCK,
            OPMATH=tl_opmath,
            num_warps=4,
        )
    return loss, norms


def norm_penalty_triton(
    grad: torch.Tensor, target: float, weight: float, one_sided: bool, inv_scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, n): n_i = ||inv_scale * grad_i||_2, P = weight / B * sum_i phi(n_i - target) with
    phi(d) = d^2 or max(d, 0)^2; both float32 (float64 for float64 grad)."""
    return _forward(grad, target, weight, one_sided, inv_scale)


def _backward(
    grad_loss: torch.Tensor,
    grad_norms: Optional[torch.Tensor],
    grad: torch.Tensor,
    norms: torch.Tensor,
    target: float,
    weight: float,
    one_sided: bool,
    inv_scale: float,
) -> torch.Tensor:
    out = torch.empty_like(grad)
    b, n = rows_of(grad)
    if n == 0:
        return out
    work = rows_workspace(out)
    grad = conform_rows(grad, work)
    rows, block_n, iters, nblk = row_tiling(b, n)
    has_gn = grad_norms is not None
    gn = grad_norms if has_gn else norms  # never read without HAS_GN
    if launchable(grad):
        wrap_triton(_backward_kernel)[(triton.cdiv(b, rows), nblk)](
            grad_loss,
            gn,
            grad,
            norms,
            work,
            b,
            n,
            grad.stride(0),
            work.stride(0),
            gn.stride(0),
            norms.stride(0),
            iters,
            target,
            weight / b,
            inv_scale,
            HAS_GN=has_gn,
            ONE_SIDED=one_sided,
            TARGET_ZERO=target == 0.0,
            ROWS=rows,
            BLOCK_N=block_n,
            OPMATH=triton_opmath(grad.dtype),
            num_warps=warps_for(rows * block_n),
        )
    if work is not out:
        out.copy_(work)
    return out


def norm_penalty_backward_triton(
    grad_loss: torch.Tensor,
    grad_norms: Optional[torch.Tensor],
    grad: torch.Tensor,
    norms: torch.Tensor,
    target: float,
    weight: float,
    one_sided: bool,
    inv_scale: float,
) -> torch.Tensor:
    """dL/dg_ij = c_i * inv_scale^2 * g_ij / n_i, c_i = grad_loss * weight / B * phi'(n_i - target)
    + grad_norms_i, 0 on a zero row; shaped and typed like grad."""
    return _backward(grad_loss, grad_norms, grad, norms, target, weight, one_sided, inv_scale)


define("gankernels::norm_penalty_triton", norm_penalty_triton, mutates_args=())
define("gankernels::norm_penalty_backward_triton", norm_penalty_backward_triton, mutates_args=())
