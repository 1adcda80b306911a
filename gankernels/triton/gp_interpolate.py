"""Triton gp_interpolate: x_hat_i = eps_i * real_i + (1 - eps_i) * fake_i (docs/math.md section 1).

Backward, one fused pass: grad_real = eps * g, grad_fake = (1 - eps) * g, and when real and fake
are given grad_eps_i = sum_j g_ij (real_ij - fake_ij) as per-tile partial sums that a second
small kernel adds in a fixed order (deterministic, no atomics).

Tensors are walked as [B, N] rows (`_common.row_tiling`); contiguous and channels_last inputs
and batch slices are read in place, other layouts are copied once.
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
    triton_opmath,
    warps_for,
)


@triton.jit
def _gp_forward_kernel(
    real_ptr,
    fake_ptr,
    eps_ptr,
    out_ptr,
    B,
    N,
    real_rs,
    fake_rs,
    out_rs,
    eps_stride,
    ITERS,
    ROWS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    OPMATH: tl.constexpr,
):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    row_mask = rows < B
    rows = rows.to(tl.int64)
    e = tl.load(eps_ptr + rows * eps_stride, mask=row_mask).to(OPMATH)[:, None]
    col0 = tl.program_id(1) * ITERS * BLOCK_N
    for k in range(ITERS):
        cols = col0 + k * BLOCK_N + tl.arange(0, BLOCK_N)
        mask = row_mask[:, None] & (cols < N)[None, :]
        r = tl.load(real_ptr + rows[:, None] * real_rs + cols[None, :], mask=mask).to(OPMATH)
        f = tl.load(fake_ptr + rows[:, None] * fake_rs + cols[None, :], mask=mask).to(OPMATH)
        x = e * r + (1.0 - e) * f
        tl.store(
            out_ptr + rows[:, None] * out_rs + cols[None, :],
            x.to(out_ptr.dtype.element_ty),
            mask=mask,
        )


@triton.jit
def _gp_backward_kernel(
    grad_ptr,
    eps_ptr,
    real_ptr,
    fake_ptr,
    gr_ptr,
    gf_ptr,
    part_ptr,
    B,
    N,
    grad_rs,
    real_rs,
    fake_rs,
    out_rs,
    eps_stride,
    ITERS,
    NBLK,
    HAS_EPS: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    OPMATH: tl.constexpr,
):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    row_mask = rows < B
    rows = rows.to(tl.int64)
    e = tl.load(eps_ptr + rows * eps_stride, mask=row_mask).to(OPMATH)[:, None]
    col0 = tl.program_id(1) * ITERS * BLOCK_N
    acc = tl.zeros([ROWS, BLOCK_N], OPMATH)
    for k in range(ITERS):
        cols = col0 + k * BLOCK_N + tl.arange(0, BLOCK_N)
        mask = row_mask[:, None] & (cols < N)[None, :]
        g = tl.load(grad_ptr + rows[:, None] * grad_rs + cols[None, :], mask=mask).to(OPMATH)
        out = rows[:, None] * out_rs + cols[None, :]
        tl.store(gr_ptr + out, (e * g).to(gr_ptr.dtype.element_ty), mask=mask)
        tl.store(gf_ptr + out, ((1.0 - e) * g).to(gf_ptr.dtype.element_ty), mask=mask)
        if HAS_EPS:
            r = tl.load(real_ptr + rows[:, None] * real_rs + cols[None, :], mask=mask).to(OPMATH)
            f = tl.load(fake_ptr + rows[:, None] * fake_rs + cols[None, :], mask=mask).to(OPMATH)
            acc += (r - f) * g
    if HAS_EPS:
        tl.store(part_ptr + rows * NBLK + tl.program_id(1), tl.sum(acc, axis=1), mask=row_mask)


@triton.jit
def _row_sum_kernel(part_ptr, out_ptr, B, NBLK, BLOCK_B: tl.constexpr, OPMATH: tl.constexpr):
    """out_i = sum_k part[i, k], k in order: the deterministic second stage of a row reduction."""
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    mask = rows < B
    rows = rows.to(tl.int64)
    total = tl.zeros([BLOCK_B], OPMATH)
    for k in range(NBLK):
        total += tl.load(part_ptr + rows * NBLK + k, mask=mask, other=0.0)
    tl.store(out_ptr + rows, total.to(out_ptr.dtype.element_ty), mask=mask)


def _forward(real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(real)
    b, n = rows_of(real)
    if n == 0:
        return out
    work = rows_workspace(out)
    real = conform_rows(real, work)
    fake = conform_rows(fake, work)
    rows, block_n, iters, nblk = row_tiling(b, n)
    if launchable(real):
        wrap_triton(_gp_forward_kernel)[(triton.cdiv(b, rows), nblk)](
            real,
            fake,
            eps,
            work,
            b,
            n,
            real.stride(0),
            fake.stride(0),
            work.stride(0),
            eps.stride(0),
            iters,
            ROWS=rows,
            BLOCK_N=block_n,
            OPMATH=triton_opmath(real.dtype),
            num_warps=warps_for(rows * block_n),
        )
    if work is not out:
        out.copy_(work)
    return out


def gp_interpolate_triton(
    real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """x_hat_i = eps_i * real_i + (1 - eps_i) * fake_i, in float32 for half types; the output
    has real's layout (empty_like(real))."""
    return _forward(real, fake, eps)


def _backward(
    grad: torch.Tensor,
    eps: torch.Tensor,
    real: Optional[torch.Tensor],
    fake: Optional[torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    grad_real = torch.empty_like(grad)
    grad_fake = torch.empty_like(grad)
    has_eps = real is not None and fake is not None
    b, n = rows_of(grad)
    if n == 0:
        return grad_real, grad_fake, eps.new_zeros((b,))
    work_r = rows_workspace(grad_real)
    work_f = rows_workspace(grad_fake)
    grad = conform_rows(grad, work_r)
    if has_eps:
        real = conform_rows(real, work_r)
        fake = conform_rows(fake, work_r)
    else:
        real = fake = grad  # never read: HAS_EPS is off
    tl_opmath = triton_opmath(grad.dtype)
    opmath = torch.float64 if grad.dtype == torch.float64 else torch.float32
    rows, block_n, iters, nblk = row_tiling(b, n)
    grad_eps = eps.new_zeros((b,)) if not has_eps else eps.new_empty((b,))
    partials = grad.new_empty((b, nblk) if has_eps else (1,), dtype=opmath)
    if launchable(grad):
        wrap_triton(_gp_backward_kernel)[(triton.cdiv(b, rows), nblk)](
            grad,
            eps,
            real,
            fake,
            work_r,
            work_f,
            partials,
            b,
            n,
            grad.stride(0),
            real.stride(0),
            fake.stride(0),
            work_r.stride(0),
            eps.stride(0),
            iters,
            nblk,
            HAS_EPS=has_eps,
            ROWS=rows,
            BLOCK_N=block_n,
            OPMATH=tl_opmath,
            num_warps=warps_for(rows * block_n),
        )
        if has_eps:
            wrap_triton(_row_sum_kernel)[(triton.cdiv(b, 1024),)](
                partials,
                grad_eps,
                b,
                nblk,
                BLOCK_B=1024,
                OPMATH=tl_opmath,
                num_warps=4,
            )
    if work_r is not grad_real:
        grad_real.copy_(work_r)
    if work_f is not grad_fake:
        grad_fake.copy_(work_f)
    return grad_real, grad_fake, grad_eps


def gp_interpolate_backward_triton(
    grad: torch.Tensor,
    eps: torch.Tensor,
    real: Optional[torch.Tensor],
    fake: Optional[torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(eps * g, (1 - eps) * g, grad_eps) with grad_eps_i = sum_j g_ij (real_ij - fake_ij), or
    zeros when real / fake are None; grad_eps has eps's shape [B] and dtype."""
    return _backward(grad, eps, real, fake)


define("gankernels::gp_interpolate_triton", gp_interpolate_triton, mutates_args=())
define(
    "gankernels::gp_interpolate_backward_triton", gp_interpolate_backward_triton, mutates_args=()
)
