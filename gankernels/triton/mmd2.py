"""Triton mmd2: the squared MMD between the rows of x [B, D] and y [B', D] under the kernel
k(a, b) = sum_s exp(-||a - b||^2 / (2 s^2)) (docs/math.md section 8).

No pair matrix is stored. Forward: one program per (row tile, column tile) of a pair set (x with
x, y with y, x with y) computes the tile's squared distances from differences (no inner-product
cancellation), over D in chunks, exponentiates and sums them, and writes one partial; the
launcher adds the partials in a fixed order (deterministic, no atomics). For a set against
itself only the tiles on or above the diagonal work, and the pairs i < j are counted twice.

Backward: one program per row tile of x or y walks every column tile of both sets, computes the
tile's distances once, and adds w G(a_m, b_j) (a_m - b_j) to its own rows of a float64
accumulator, feature chunk by feature chunk, G = sum_s exp(-||a - b||^2 / (2 s^2)) / s^2
(w = -2 c_aa against its own set, 2 c_xy against the other). The upstream gradient scales the
result on the device, never through .item().
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from ._common import INTERPRETED, define, launchable, triton_opmath

BLOCK = 32 if not INTERPRETED else 64  # rows and columns per tile
BLOCK_D = 8 if not INTERPRETED else 64  # features per step


@triton.jit
def _tile_distances(
    a_ptr, b_ptr, rows, cols, NA, NB, D, BLOCK_D: tl.constexpr, OPMATH: tl.constexpr
):
    """||a_i - b_j||^2 for the tile's rows i and columns j, from differences."""
    d2 = tl.zeros([rows.shape[0], cols.shape[0]], OPMATH)
    for d0 in range(0, D, BLOCK_D):
        feats = d0 + tl.arange(0, BLOCK_D)
        fmask = feats < D
        a = tl.load(
            a_ptr + rows[:, None] * D + feats[None, :],
            mask=(rows < NA)[:, None] & fmask[None, :],
            other=0.0,
        )
        b = tl.load(
            b_ptr + cols[:, None] * D + feats[None, :],
            mask=(cols < NB)[:, None] & fmask[None, :],
            other=0.0,
        )
        diff = a[:, None, :] - b[None, :, :]
        d2 += tl.sum(diff * diff, axis=2)
    return d2


@triton.jit
def _pair_sum_kernel(
    a_ptr,
    b_ptr,
    bw_ptr,
    part_ptr,
    NA,
    NB,
    D,
    S,
    SAME: tl.constexpr,
    BLOCK: tl.constexpr,
    BLOCK_D: tl.constexpr,
    OPMATH: tl.constexpr,
):
    pid_i = tl.program_id(0)
    pid_j = tl.program_id(1)
    total = tl.zeros([], OPMATH)
    # A set against itself: the tiles wholly below the diagonal hold no pair i < j.
    first_col = pid_i * BLOCK if SAME else 0
    if (pid_j + 1) * BLOCK > first_col:
        rows = (pid_i * BLOCK + tl.arange(0, BLOCK)).to(tl.int64)
        cols = (pid_j * BLOCK + tl.arange(0, BLOCK)).to(tl.int64)
        d2 = _tile_distances(a_ptr, b_ptr, rows, cols, NA, NB, D, BLOCK_D, OPMATH)
        k = tl.zeros([BLOCK, BLOCK], OPMATH)
        for s in range(S):
            k += tl.exp(tl.load(bw_ptr + s) * d2)
        valid = (rows < NA)[:, None] & (cols < NB)[None, :]
        if SAME:
            valid = valid & (cols[None, :] > rows[:, None])
        total = tl.sum(tl.sum(tl.where(valid, k, 0.0), axis=1), axis=0)
    tl.store(part_ptr + pid_i * tl.num_programs(1) + pid_j, total)


@triton.jit
def _gradient_kernel(
    a_ptr,
    b_ptr,
    bw_ptr,
    acc_ptr,
    NA,
    NB,
    D,
    S,
    w_self: tl.float64,
    w_other: tl.float64,
    BLOCK: tl.constexpr,
    BLOCK_D: tl.constexpr,
    OPMATH: tl.constexpr,
):
    rows = (tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)).to(tl.int64)
    row_mask = rows < NA
    # Pass 0: against a's own rows (j != i), weight w_self; pass 1: against b's, weight w_other.
    # Each column tile's distances are computed once; the tile's contribution is then added to
    # the program's own rows of the accumulator, one feature chunk at a time.
    for which in tl.static_range(2):
        set_ptr = a_ptr if which == 0 else b_ptr
        n_set = NA if which == 0 else NB
        weight = tl.full([], w_self if which == 0 else w_other, OPMATH)
        for j0 in range(0, n_set, BLOCK):
            cols = (j0 + tl.arange(0, BLOCK)).to(tl.int64)
            col_mask = cols < n_set
            d2 = _tile_distances(a_ptr, set_ptr, rows, cols, NA, n_set, D, BLOCK_D, OPMATH)
            g = tl.zeros([BLOCK, BLOCK], OPMATH)
            for s in range(S):
                g += tl.load(bw_ptr + S + s) * tl.exp(tl.load(bw_ptr + s) * d2)
            valid = row_mask[:, None] & col_mask[None, :]
            if which == 0:
                valid = valid & (cols[None, :] != rows[:, None])
            g = tl.where(valid, g * weight, 0.0)
            for f0 in range(0, D, BLOCK_D):
                feats = f0 + tl.arange(0, BLOCK_D)
                fmask = feats < D
                own = row_mask[:, None] & fmask[None, :]
                a = tl.load(a_ptr + rows[:, None] * D + feats[None, :], mask=own, other=0.0)
                b = tl.load(
                    set_ptr + cols[:, None] * D + feats[None, :],
                    mask=col_mask[:, None] & fmask[None, :],
                    other=0.0,
                )
                step = tl.sum(g[:, :, None] * (a[:, None, :] - b[None, :, :]), axis=1)
                at = acc_ptr + rows[:, None] * D + feats[None, :]
                tl.store(at, tl.load(at, mask=own, other=0.0) + step.to(tl.float64), mask=own)


def _prepare(x: torch.Tensor, y: torch.Tensor, sigmas: list[float]):
    """Contiguous opmath rows of x and y, and the bandwidths as [-1 / (2 s^2)..., 1 / s^2...]."""
    opmath = torch.float64 if x.dtype == torch.float64 else torch.float32
    xo = x.to(opmath).contiguous()
    yo = y.to(opmath).contiguous()
    s2 = torch.tensor([s * s for s in sigmas], dtype=torch.float64)
    bw = torch.cat([-0.5 / s2, 1.0 / s2]).to(device=x.device, dtype=opmath)
    return opmath, xo, yo, bw


def _weights(n: int, m: int, unbiased: bool) -> tuple[float, float, float]:
    if unbiased:
        return 1.0 / (n * (n - 1)), 1.0 / (m * (m - 1)), 1.0 / (n * m)
    return 1.0 / (n * n), 1.0 / (m * m), 1.0 / (n * m)


def _pair_sum(a: torch.Tensor, b: torch.Tensor, bw: torch.Tensor, same: bool) -> torch.Tensor:
    """sum_{i,j} k(a_i, b_j), or sum_{i<j} for a set against itself, as a float64 0-dim tensor."""
    na, nb, d = a.shape[0], b.shape[0], a.shape[1]
    grid = (triton.cdiv(na, BLOCK), triton.cdiv(nb, BLOCK))
    partials = a.new_empty(grid)
    if launchable(a):
        wrap_triton(_pair_sum_kernel)[grid](
            a,
            b,
            bw,
            partials,
            na,
            nb,
            d,
            bw.shape[0] // 2,
            SAME=same,
            BLOCK=BLOCK,
            BLOCK_D=BLOCK_D,
            OPMATH=triton_opmath(a.dtype),
            num_warps=4,
        )
    return partials.double().sum()


def mmd2_triton(
    x: torch.Tensor, y: torch.Tensor, sigmas: list[float], unbiased: bool
) -> torch.Tensor:
    """MMD^2 of x [B, D] and y [B', D] (unbiased or biased), float32 (float64 for float64)."""
    opmath, xo, yo, bw = _prepare(x, y, sigmas)
    n, m = x.shape[0], y.shape[0]
    w_xx, w_yy, w_xy = _weights(n, m, unbiased)
    diagonal = 0.0 if unbiased else float(len(sigmas))  # k(a, a), exactly
    sxx = 2 * _pair_sum(xo, xo, bw, True) + n * diagonal
    syy = 2 * _pair_sum(yo, yo, bw, True) + m * diagonal
    sxy = _pair_sum(xo, yo, bw, False)
    return (w_xx * sxx + w_yy * syy - 2 * w_xy * sxy).to(opmath)


def _gradient(a, b, bw, grad, w_self, w_other, dtype) -> torch.Tensor:
    """grad * sum_j w G(a_m, b_j) (a_m - b_j) over both sets, for every row m of a."""
    na, d = a.shape
    # float64 across column tiles: the gradient is a difference of sums that float32 kept over
    # a whole batch would lose.
    acc = torch.zeros_like(a, dtype=torch.float64)
    if launchable(a):
        wrap_triton(_gradient_kernel)[(triton.cdiv(na, BLOCK),)](
            a,
            b,
            bw,
            acc,
            na,
            b.shape[0],
            d,
            bw.shape[0] // 2,
            w_self,
            w_other,
            BLOCK=BLOCK,
            BLOCK_D=BLOCK_D,
            OPMATH=triton_opmath(a.dtype),
            num_warps=4,
        )
    return (acc * grad).to(dtype)


def mmd2_backward_triton(
    grad: torch.Tensor, x: torch.Tensor, y: torch.Tensor, sigmas: list[float], unbiased: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(grad_x, grad_y): d(grad * MMD^2)/dx and /dy, contiguous, typed like x and y."""
    opmath, xo, yo, bw = _prepare(x, y, sigmas)
    w_xx, w_yy, w_xy = _weights(x.shape[0], y.shape[0], unbiased)
    g = grad.to(opmath)
    grad_x = _gradient(xo, yo, bw, g, -2 * w_xx, 2 * w_xy, x.dtype)
    grad_y = _gradient(yo, xo, bw, g, -2 * w_yy, 2 * w_xy, y.dtype)
    return grad_x, grad_y


define("gankernels::mmd2_triton", mmd2_triton, mutates_args=())
define("gankernels::mmd2_backward_triton", mmd2_backward_triton, mutates_args=())
