"""Triton adversarial_loss: every critic / generator loss of docs/math.md section 3, fused.

Each loss is a sum of two means, L = E_X[h_X(x)] + E_Y[h_Y(y)] over the two critic outputs
(X = real, Y = fake; swapped for the relativistic generator), where each h is sign * F(v - shift)
for one elementwise function F of the table below (`_term`), and the shift is 0 except for the
relativistic loss, whose shifts are the means of the other side:

    relativistic critic  L = E_X[sp(m_Y - x)] + E_Y[sp(y - m_X)]
    dL/dx_j = (-sigma(m_Y - x_j) - S_Y) / n_X,  dL/dy_k = (sigma(y_k - m_X) - A_X) / n_Y
    with A_X = E_X[-sigma(m_Y - x)] and S_Y = E_Y[sigma(y - m_X)] (each h' averaged).

The backward is elementwise: dL/dv = grad_loss * (h'(v) + extra) / n. Small outputs (the usual
[B] logits) take one single-program launch for the whole loss or gradient; larger ones use
per-program partial sums added in a fixed order by a single-program kernel (deterministic).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from ._common import (
    INTERPRETED,
    define,
    flat_workspace,
    is_dense,
    launchable,
    next_pow2,
    triton_opmath,
)

# Elementwise functions F(v) (derivative in the comment); p is the least-squares label. The
# names are those of csrc/loss_terms.h's Fn; the C++ table folds the last four into a shared F
# with a shift or constant (Exp shifted by 1, Identity - 1, Softplus(-v) and Softplus - log 2),
# and HALF_SQUARE's label into the shift.
ZERO = tl.constexpr(0)  # 0
SOFTPLUS = tl.constexpr(1)  # sp(v), sigma(v)
SOFTPLUS_NEG = tl.constexpr(2)  # sp(-v), -sigma(-v)
IDENTITY = tl.constexpr(3)  # v, 1
RELU_ONE_MINUS = tl.constexpr(4)  # relu(1 - v), -[1 - v > 0]
RELU_ONE_PLUS = tl.constexpr(5)  # relu(1 + v), [1 + v > 0]
HALF_SQUARE = tl.constexpr(6)  # (v - p)^2 / 2, v - p
EXP_NEG = tl.constexpr(7)  # e^-v, -e^-v
EXPM1 = tl.constexpr(8)  # e^v - 1, e^v
EXPM1_NEG = tl.constexpr(9)  # e^-v - 1, -e^-v
LOG2_MINUS_SOFTPLUS_NEG = tl.constexpr(10)  # log 2 - sp(-v), sigma(-v)
HALF_TANH = tl.constexpr(11)  # tanh(v) / 2, (1 - tanh^2(v)) / 2
EXP_SHIFTED = tl.constexpr(12)  # e^(v - 1), e^(v - 1)
IDENTITY_MINUS_ONE = tl.constexpr(13)  # v - 1, 1
PEARSON_CONJ = tl.constexpr(14)  # v^2 / 4 + v, v / 2 + 1
NEYMAN_CONJ = tl.constexpr(15)  # 2 - 2 e^(v / 2), -e^(v / 2)
SOFTPLUS_MINUS_LOG2 = tl.constexpr(16)  # sp(v) - log 2, sigma(v)
LOG2 = tl.constexpr(math.log(2.0))

# f-GAN: (F, sign) of the activation g_f(v) and of the composite f*(g_f(v)) (docs/math.md table).
_ACTIVATION = {
    "kl": (IDENTITY, 1),
    "reverse_kl": (EXP_NEG, -1),
    "pearson": (IDENTITY, 1),
    "neyman": (EXPM1, -1),
    "squared_hellinger": (EXPM1_NEG, -1),
    "jensen_shannon": (LOG2_MINUS_SOFTPLUS_NEG, 1),
    "gan": (SOFTPLUS_NEG, -1),
    "total_variation": (HALF_TANH, 1),
}
_CONJUGATE = {
    "kl": (EXP_SHIFTED, 1),
    "reverse_kl": (IDENTITY_MINUS_ONE, 1),
    "pearson": (PEARSON_CONJ, 1),
    "neyman": (NEYMAN_CONJ, 1),
    "squared_hellinger": (EXPM1, 1),
    "jensen_shannon": (SOFTPLUS_MINUS_LOG2, 1),
    "gan": (SOFTPLUS, 1),
    "total_variation": (HALF_TANH, 1),
}

SMALL_BLOCKS = 32  # up to this many blocks, one program computes the whole loss or gradient
MAX_PROGRAMS = 1024
# Block of the flat kernels; larger under the interpreter, which runs programs one by one.
MAX_BLOCK = 1024 if not INTERPRETED else 1 << 14


@triton.jit
def _term(v, p, F: tl.constexpr, DERIV: tl.constexpr, OPMATH: tl.constexpr):
    """F(v), or F'(v) when DERIV, for one function code of the table above."""
    if F == ZERO:
        out = tl.zeros_like(v)
    elif (
        (F == SOFTPLUS)
        or (F == SOFTPLUS_NEG)
        or (F == LOG2_MINUS_SOFTPLUS_NEG)
        or (F == SOFTPLUS_MINUS_LOG2)
    ):
        if (F == SOFTPLUS) or (F == SOFTPLUS_MINUS_LOG2):
            u = v
        else:
            u = -v
        e = tl.exp(-tl.abs(u))
        if DERIV:
            r = 1.0 / (1.0 + e)
            sig = tl.where(u >= 0, r, e * r)  # sigma(u) from the side that does not overflow
            if F == SOFTPLUS_NEG:
                out = -sig
            else:
                out = sig
        else:
            # sp(u) = max(u, 0) + log1p(e^-|u|), log1p by Goldberg's u' = 1 + e trick.
            w = 1.0 + e
            d = w - 1.0
            sp = tl.maximum(u, 0.0) + tl.where(
                d == 0.0, e, tl.log(w) * (e / tl.where(d == 0.0, 1.0, d))
            )
            if F == LOG2_MINUS_SOFTPLUS_NEG:
                out = tl.full([], LOG2, OPMATH) - sp
            elif F == SOFTPLUS_MINUS_LOG2:
                out = sp - tl.full([], LOG2, OPMATH)
            else:
                out = sp
    elif F == IDENTITY:
        if DERIV:
            out = tl.full(v.shape, 1.0, OPMATH)
        else:
            out = v
    elif F == RELU_ONE_MINUS:
        t = 1.0 - v
        if DERIV:
            out = tl.where(t > 0.0, -1.0, 0.0).to(OPMATH)
        else:
            out = tl.maximum(t, 0.0)
    elif F == RELU_ONE_PLUS:
        t = 1.0 + v
        if DERIV:
            out = tl.where(t > 0.0, 1.0, 0.0).to(OPMATH)
        else:
            out = tl.maximum(t, 0.0)
    elif F == HALF_SQUARE:
        if DERIV:
            out = v - p
        else:
            out = 0.5 * (v - p) * (v - p)
    elif F == EXP_NEG:
        if DERIV:
            out = -tl.exp(-v)
        else:
            out = tl.exp(-v)
    elif (F == EXPM1) or (F == EXPM1_NEG) or (F == NEYMAN_CONJ):
        # F is expm1(x) (expm1(-v); neyman's 2 - 2 e^(v/2) = -2 expm1(v/2)); F' is +-e^x.
        if F == EXPM1:
            x = v
        elif F == EXPM1_NEG:
            x = -v
        else:
            x = 0.5 * v
        ex = tl.exp(x)
        if DERIV:
            if F == EXPM1:
                out = ex
            else:
                out = -ex
        else:
            em1 = ex - 1.0
            if OPMATH == tl.float32:
                # e^x - 1 cancels near 0 in float32: its Taylor series to x^9 / 9! there.
                q = x * (1.0 / 362880) + 1.0 / 40320
                q = (((q * x + 1.0 / 5040) * x + 1.0 / 720) * x + 1.0 / 120) * x + 1.0 / 24
                q = ((q * x + 1.0 / 6) * x + 0.5) * x * x + x
                em1 = tl.where(tl.abs(x) < 0.5, q, em1)
            if F == NEYMAN_CONJ:
                out = -2.0 * em1
            else:
                out = em1
    elif F == HALF_TANH:
        # tanh(|v|) = (1 - e) / (1 + e) with e = e^(-2|v|): no overflow for large |v|.
        a = tl.abs(v)
        e = tl.exp(-2.0 * a)
        t = (1.0 - e) / (1.0 + e)
        if OPMATH == tl.float32:
            # which cancels near 0 in float32: Cephes' odd polynomial below |v| = 0.625.
            z = a * a
            q = (-5.70498872745e-3 * z + 2.06390887954e-2) * z - 5.37397155531e-2
            q = ((q * z + 1.33314422036e-1) * z - 3.33332819422e-1) * z * a + a
            t = tl.where(a < 0.625, q, t)
        if DERIV:
            out = 0.5 * (1.0 - t * t)
        else:
            out = 0.5 * tl.where(v < 0, -t, t)
    elif F == EXP_SHIFTED:
        out = tl.exp(v - 1.0)
    elif F == IDENTITY_MINUS_ONE:
        if DERIV:
            out = tl.full(v.shape, 1.0, OPMATH)
        else:
            out = v - 1.0
    else:  # PEARSON_CONJ
        if DERIV:
            out = 0.5 * v + 1.0
        else:
            out = 0.25 * v * v + v
    return out


@triton.jit
def _side_sum(
    ptr,
    n,
    shift,
    p,
    start,
    step,
    F: tl.constexpr,
    SIGN: tl.constexpr,
    DERIV: tl.constexpr,
    BLOCK: tl.constexpr,
    OPMATH: tl.constexpr,
):
    """sum of SIGN * F(v - shift) (or of its derivative) over blocks start, start + step, ..."""
    acc = tl.zeros([BLOCK], OPMATH)
    for blk in range(start, tl.cdiv(n, BLOCK), step):
        offs = tl.cast(blk, tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        v = tl.load(ptr + offs, mask=mask, other=0.0).to(OPMATH) - shift
        acc += tl.where(mask, _term(v, p, F, DERIV, OPMATH), 0.0)
    return SIGN * tl.sum(acc, axis=0)


@triton.jit
def _side_grad(
    ptr,
    out_ptr,
    n,
    shift,
    p,
    extra,
    coef,
    start,
    step,
    stop,
    F: tl.constexpr,
    SIGN: tl.constexpr,
    BLOCK: tl.constexpr,
    OPMATH: tl.constexpr,
):
    """out = coef * (SIGN * F'(v - shift) + extra) over blocks start, start + step, ... < stop."""
    for blk in range(start, stop, step):
        offs = tl.cast(blk, tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        v = tl.load(ptr + offs, mask=mask, other=0.0).to(OPMATH) - shift
        g = coef * (SIGN * _term(v, p, F, True, OPMATH) + extra)
        tl.store(out_ptr + offs, g.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _small_kernel(
    x_ptr,
    y_ptr,
    gl_ptr,
    out_ptr,
    gx_ptr,
    gy_ptr,
    n_x,
    n_y,
    inv_nx: tl.float64,
    inv_ny: tl.float64,
    p_x: tl.float64,
    p_y: tl.float64,
    FX: tl.constexpr,
    SX: tl.constexpr,
    FY: tl.constexpr,
    SY: tl.constexpr,
    REL: tl.constexpr,
    BACKWARD: tl.constexpr,
    BLOCK: tl.constexpr,
    OPMATH: tl.constexpr,
):
    """The whole loss (or its gradient) in one program, for outputs of a few blocks."""
    ix = tl.full([], inv_nx, OPMATH)
    iy = tl.full([], inv_ny, OPMATH)
    px = tl.full([], p_x, OPMATH)
    py = tl.full([], p_y, OPMATH)
    m_x = tl.zeros([], OPMATH)
    m_y = tl.zeros([], OPMATH)
    if REL:
        m_x = _side_sum(x_ptr, n_x, m_x, px, 0, 1, IDENTITY, 1, False, BLOCK, OPMATH) * ix
        m_y = _side_sum(y_ptr, n_y, m_y, py, 0, 1, IDENTITY, 1, False, BLOCK, OPMATH) * iy
    if BACKWARD:
        extra_x = tl.zeros([], OPMATH)
        extra_y = tl.zeros([], OPMATH)
        if REL:
            extra_y = -_side_sum(x_ptr, n_x, m_y, px, 0, 1, FX, SX, True, BLOCK, OPMATH) * ix
            extra_x = -_side_sum(y_ptr, n_y, m_x, py, 0, 1, FY, SY, True, BLOCK, OPMATH) * iy
        gl = tl.load(gl_ptr).to(OPMATH)
        _side_grad(
            x_ptr,
            gx_ptr,
            n_x,
            m_y,
            px,
            extra_x,
            gl * ix,
            0,
            1,
            tl.cdiv(n_x, BLOCK),
            FX,
            SX,
            BLOCK,
            OPMATH,
        )
        _side_grad(
            y_ptr,
            gy_ptr,
            n_y,
            m_x,
            py,
            extra_y,
            gl * iy,
            0,
            1,
            tl.cdiv(n_y, BLOCK),
            FY,
            SY,
            BLOCK,
            OPMATH,
        )
    else:
        loss = (
            _side_sum(x_ptr, n_x, m_y, px, 0, 1, FX, SX, False, BLOCK, OPMATH) * ix
            + _side_sum(y_ptr, n_y, m_x, py, 0, 1, FY, SY, False, BLOCK, OPMATH) * iy
        )
        tl.store(out_ptr, loss)


@triton.jit
def _partial_kernel(
    x_ptr,
    y_ptr,
    stats_ptr,
    part_ptr,
    n_x,
    n_y,
    p_x: tl.float64,
    p_y: tl.float64,
    FX: tl.constexpr,
    SX: tl.constexpr,
    FY: tl.constexpr,
    SY: tl.constexpr,
    DERIV: tl.constexpr,
    SHIFTED: tl.constexpr,
    NPROG,
    BLOCK: tl.constexpr,
    OPMATH: tl.constexpr,
):
    """Per-program partial sums of both sides, over a grid-stride set of blocks."""
    pid = tl.program_id(0)
    m_x = tl.zeros([], OPMATH)
    m_y = tl.zeros([], OPMATH)
    if SHIFTED:
        m_x = tl.load(stats_ptr).to(OPMATH)
        m_y = tl.load(stats_ptr + 1).to(OPMATH)
    s_x = _side_sum(
        x_ptr, n_x, m_y, tl.full([], p_x, OPMATH), pid, NPROG, FX, SX, DERIV, BLOCK, OPMATH
    )
    s_y = _side_sum(
        y_ptr, n_y, m_x, tl.full([], p_y, OPMATH), pid, NPROG, FY, SY, DERIV, BLOCK, OPMATH
    )
    tl.store(part_ptr + 2 * pid, s_x)
    tl.store(part_ptr + 2 * pid + 1, s_y)


@triton.jit
def _combine_kernel(
    part_ptr,
    out_ptr,
    NPROG,
    inv_nx: tl.float64,
    inv_ny: tl.float64,
    COMBINE: tl.constexpr,
    BLOCK_P: tl.constexpr,
    OPMATH: tl.constexpr,
):
    """Adds the partials in a fixed order: out = [mean_x + mean_y] or [mean_x, mean_y]."""
    offs = tl.arange(0, BLOCK_P)
    mask = offs < NPROG
    s_x = tl.sum(tl.load(part_ptr + 2 * offs, mask=mask, other=0.0), axis=0)
    s_y = tl.sum(tl.load(part_ptr + 2 * offs + 1, mask=mask, other=0.0), axis=0)
    s_x = s_x * tl.full([], inv_nx, OPMATH)
    s_y = s_y * tl.full([], inv_ny, OPMATH)
    if COMBINE:
        tl.store(out_ptr, s_x + s_y)
    else:
        tl.store(out_ptr, s_x)
        tl.store(out_ptr + 1, s_y)


@triton.jit
def _grad_kernel(
    x_ptr,
    y_ptr,
    gl_ptr,
    stats_ptr,
    gx_ptr,
    gy_ptr,
    n_x,
    n_y,
    blocks_x,
    inv_nx: tl.float64,
    inv_ny: tl.float64,
    p_x: tl.float64,
    p_y: tl.float64,
    FX: tl.constexpr,
    SX: tl.constexpr,
    FY: tl.constexpr,
    SY: tl.constexpr,
    REL: tl.constexpr,
    BLOCK: tl.constexpr,
    OPMATH: tl.constexpr,
):
    """One block of either side's gradient per program; stats = [m_X, m_Y, A_X, S_Y]."""
    pid = tl.program_id(0)
    gl = tl.load(gl_ptr).to(OPMATH)
    m_x = tl.zeros([], OPMATH)
    m_y = tl.zeros([], OPMATH)
    extra_x = tl.zeros([], OPMATH)
    extra_y = tl.zeros([], OPMATH)
    if REL:
        m_x = tl.load(stats_ptr).to(OPMATH)
        m_y = tl.load(stats_ptr + 1).to(OPMATH)
        extra_y = -tl.load(stats_ptr + 2).to(OPMATH)
        extra_x = -tl.load(stats_ptr + 3).to(OPMATH)
    if pid < blocks_x:
        _side_grad(
            x_ptr,
            gx_ptr,
            n_x,
            m_y,
            tl.full([], p_x, OPMATH),
            extra_x,
            gl * tl.full([], inv_nx, OPMATH),
            pid,
            1,
            pid + 1,
            FX,
            SX,
            BLOCK,
            OPMATH,
        )
    else:
        _side_grad(
            y_ptr,
            gy_ptr,
            n_y,
            m_x,
            tl.full([], p_y, OPMATH),
            extra_y,
            gl * tl.full([], inv_ny, OPMATH),
            pid - blocks_x,
            1,
            pid - blocks_x + 1,
            FY,
            SY,
            BLOCK,
            OPMATH,
        )


def _plan(kind: str, role: str, a: float, b: float, c: float, nonsaturating: bool):
    """((F_X, sign_X, p_X), (F_Y, sign_Y, p_Y), relativistic, swap) for one loss."""
    none = (ZERO, 1, 0.0)
    if role == "critic":
        if kind in ("minimax", "nonsaturating"):
            return (SOFTPLUS_NEG, 1, 0.0), (SOFTPLUS, 1, 0.0), False, False
        if kind == "wasserstein":
            return (IDENTITY, -1, 0.0), (IDENTITY, 1, 0.0), False, False
        if kind == "hinge":
            return (RELU_ONE_MINUS, 1, 0.0), (RELU_ONE_PLUS, 1, 0.0), False, False
        if kind == "least_squares":
            return (HALF_SQUARE, 1, b), (HALF_SQUARE, 1, a), False, False
        if kind == "relativistic":
            return (SOFTPLUS_NEG, 1, 0.0), (SOFTPLUS, 1, 0.0), True, False
        f, s = _ACTIVATION[kind]
        return (f, -s, 0.0), (*_CONJUGATE[kind], 0.0), False, False
    if kind == "minimax":
        return none, (SOFTPLUS, -1, 0.0), False, False
    if kind == "nonsaturating":
        return none, (SOFTPLUS_NEG, 1, 0.0), False, False
    if kind in ("wasserstein", "hinge"):
        return none, (IDENTITY, -1, 0.0), False, False
    if kind == "least_squares":
        return none, (HALF_SQUARE, 1, c), False, False
    if kind == "relativistic":
        # The generator's loss is the critic's with real and fake exchanged.
        return (SOFTPLUS_NEG, 1, 0.0), (SOFTPLUS, 1, 0.0), True, True
    assert kind in _CONJUGATE, kind
    f, s = _ACTIVATION[kind] if nonsaturating else _CONJUGATE[kind]
    return none, (f, -s, 0.0), False, False


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t if is_dense(t) else t.contiguous()


def _launch_shape(n_x: int, n_y: int) -> tuple[int, bool, int]:
    """(BLOCK, single, programs): single selects the one-program kernel, else `programs`
    programs share the blocks, grid-stride."""
    block = max(16, min(MAX_BLOCK, next_pow2(max(n_x, n_y))))
    blocks = triton.cdiv(n_x, block) + triton.cdiv(n_y, block)
    return block, blocks <= SMALL_BLOCKS, min(MAX_PROGRAMS, triton.cdiv(blocks, 4))


def _warps(block: int) -> int:
    return max(1, min(8, block // 256))


def _sides(real_out, fake_out, kind, role, a, b, c, nonsaturating):
    (fx, sx, px), (fy, sy, py), rel, swap = _plan(kind, role, a, b, c, nonsaturating)
    x, y = (fake_out, real_out) if swap else (real_out, fake_out)
    if fx == ZERO:
        x = None
    return x, y, (fx, sx, px), (fy, sy, py), rel, swap


def _forward(
    real_out: Optional[torch.Tensor],
    fake_out: torch.Tensor,
    kind: str,
    role: str,
    a: float,
    b: float,
    c: float,
    nonsaturating: bool,
) -> torch.Tensor:
    x, y, (fx, sx, px), (fy, sy, py), rel, _ = _sides(
        real_out, fake_out, kind, role, a, b, c, nonsaturating
    )
    opmath = torch.float64 if fake_out.dtype == torch.float64 else torch.float32
    tl_opmath = triton_opmath(fake_out.dtype)
    loss = fake_out.new_empty((), dtype=opmath)
    y = _flat(y)
    x = _flat(x) if x is not None else y  # never read when x is unused: n_x = 0
    n_x = x.numel() if fx != ZERO else 0
    n_y = y.numel()
    inv_x = 1.0 / n_x if n_x else 0.0
    inv_y = 1.0 / n_y
    block, single, programs = _launch_shape(n_x, n_y)
    if not launchable(y):
        return loss
    if single:
        wrap_triton(_small_kernel)[(1,)](
            x,
            y,
            loss,
            loss,
            x,
            y,
            n_x,
            n_y,
            inv_x,
            inv_y,
            px,
            py,
            FX=fx,
            SX=sx,
            FY=fy,
            SY=sy,
            REL=rel,
            BACKWARD=False,
            BLOCK=block,
            OPMATH=tl_opmath,
            num_warps=_warps(block),
        )
        return loss
    part = fake_out.new_empty((2 * programs,), dtype=opmath)
    stats = fake_out.new_empty((2,), dtype=opmath)
    if rel:
        wrap_triton(_partial_kernel)[(programs,)](
            x,
            y,
            stats,
            part,
            n_x,
            n_y,
            px,
            py,
            FX=IDENTITY,
            SX=1,
            FY=IDENTITY,
            SY=1,
            DERIV=False,
            SHIFTED=False,
            NPROG=programs,
            BLOCK=block,
            OPMATH=tl_opmath,
            num_warps=_warps(block),
        )
        wrap_triton(_combine_kernel)[(1,)](
            part,
            stats,
            programs,
            inv_x,
            inv_y,
            COMBINE=False,
            BLOCK_P=MAX_PROGRAMS,
            OPMATH=tl_opmath,
            num_warps=4,
        )
    wrap_triton(_partial_kernel)[(programs,)](
        x,
        y,
        stats,
        part,
        n_x,
        n_y,
        px,
        py,
        FX=fx,
        SX=sx,
        FY=fy,
        SY=sy,
        DERIV=False,
        SHIFTED=rel,
        NPROG=programs,
        BLOCK=block,
        OPMATH=tl_opmath,
        num_warps=_warps(block),
    )
    wrap_triton(_combine_kernel)[(1,)](
        part,
        loss,
        programs,
        inv_x,
        inv_y,
        COMBINE=True,
        BLOCK_P=MAX_PROGRAMS,
        OPMATH=tl_opmath,
        num_warps=4,
    )
    return loss


def adversarial_loss_triton(
    real_out: Optional[torch.Tensor],
    fake_out: torch.Tensor,
    kind: str,
    role: str,
    a: float = -1.0,
    b: float = 1.0,
    c: float = 0.0,
    nonsaturating: bool = False,
) -> torch.Tensor:
    """The mean loss of `role` for `kind` (formulas in gankernels.reference.adversarial_loss);
    a float32 scalar (float64 for float64 outputs)."""
    return _forward(real_out, fake_out, kind, role, a, b, c, nonsaturating)


def _backward(
    grad_loss: torch.Tensor,
    real_out: Optional[torch.Tensor],
    fake_out: torch.Tensor,
    kind: str,
    role: str,
    a: float,
    b: float,
    c: float,
    nonsaturating: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    x_in, y_in, (fx, sx, px), (fy, sy, py), rel, swap = _sides(
        real_out, fake_out, kind, role, a, b, c, nonsaturating
    )
    opmath = torch.float64 if fake_out.dtype == torch.float64 else torch.float32
    tl_opmath = triton_opmath(fake_out.dtype)
    y = _flat(y_in)
    gy_out = torch.empty_like(y_in)
    gy = flat_workspace(gy_out, y)
    if x_in is not None:
        x = _flat(x_in)
        gx_out = torch.empty_like(x_in)
        gx = flat_workspace(gx_out, x)
        n_x = x.numel()
    else:
        x, gx_out, gx, n_x = y, None, gy, 0  # never touched: n_x = 0
    n_y = y.numel()
    inv_x = 1.0 / n_x if n_x else 0.0
    inv_y = 1.0 / n_y
    block, single, programs = _launch_shape(n_x, n_y)
    if launchable(y):
        if single:
            wrap_triton(_small_kernel)[(1,)](
                x,
                y,
                grad_loss,
                grad_loss,
                gx,
                gy,
                n_x,
                n_y,
                inv_x,
                inv_y,
                px,
                py,
                FX=fx,
                SX=sx,
                FY=fy,
                SY=sy,
                REL=rel,
                BACKWARD=True,
                BLOCK=block,
                OPMATH=tl_opmath,
                num_warps=_warps(block),
            )
        else:
            stats = fake_out.new_empty((4,), dtype=opmath)
            if rel:
                part = fake_out.new_empty((2 * programs,), dtype=opmath)
                wrap_triton(_partial_kernel)[(programs,)](
                    x,
                    y,
                    stats,
                    part,
                    n_x,
                    n_y,
                    px,
                    py,
                    FX=IDENTITY,
                    SX=1,
                    FY=IDENTITY,
                    SY=1,
                    DERIV=False,
                    SHIFTED=False,
                    NPROG=programs,
                    BLOCK=block,
                    OPMATH=tl_opmath,
                    num_warps=_warps(block),
                )
                wrap_triton(_combine_kernel)[(1,)](
                    part,
                    stats,
                    programs,
                    inv_x,
                    inv_y,
                    COMBINE=False,
                    BLOCK_P=MAX_PROGRAMS,
                    OPMATH=tl_opmath,
                    num_warps=4,
                )
                wrap_triton(_partial_kernel)[(programs,)](
                    x,
                    y,
                    stats,
                    part,
                    n_x,
                    n_y,
                    px,
                    py,
                    FX=fx,
                    SX=sx,
                    FY=fy,
                    SY=sy,
                    DERIV=True,
                    SHIFTED=True,
                    NPROG=programs,
                    BLOCK=block,
                    OPMATH=tl_opmath,
                    num_warps=_warps(block),
                )
                wrap_triton(_combine_kernel)[(1,)](
                    part,
                    stats[2:],
                    programs,
                    inv_x,
                    inv_y,
                    COMBINE=False,
                    BLOCK_P=MAX_PROGRAMS,
                    OPMATH=tl_opmath,
                    num_warps=4,
                )
            blocks_x = triton.cdiv(n_x, block)
            wrap_triton(_grad_kernel)[(blocks_x + triton.cdiv(n_y, block),)](
                x,
                y,
                grad_loss,
                stats,
                gx,
                gy,
                n_x,
                n_y,
                blocks_x,
                inv_x,
                inv_y,
                px,
                py,
                FX=fx,
                SX=sx,
                FY=fy,
                SY=sy,
                REL=rel,
                BLOCK=block,
                OPMATH=tl_opmath,
                num_warps=_warps(block),
            )
    if gy is not gy_out:
        gy_out.copy_(gy)
    if gx_out is not None and gx is not gx_out:
        gx_out.copy_(gx)
    if swap:
        gx_out, gy_out = gy_out, gx_out
    # Back to (real, fake) order; a real_out that the loss ignores gets zeros.
    grad_fake = gy_out
    if real_out is None:
        grad_real = fake_out.new_empty((0,))
    elif gx_out is None:
        grad_real = torch.zeros_like(real_out)
    else:
        grad_real = gx_out
    return grad_real, grad_fake


def adversarial_loss_backward_triton(
    grad_loss: torch.Tensor,
    real_out: Optional[torch.Tensor],
    fake_out: torch.Tensor,
    kind: str,
    role: str,
    a: float,
    b: float,
    c: float,
    nonsaturating: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(grad_real, grad_fake) = grad_loss * dL/dv in the outputs' dtype; grad_real is an empty
    [0] tensor when real_out is None, zeros when the loss does not read it."""
    return _backward(grad_loss, real_out, fake_out, kind, role, a, b, c, nonsaturating)


define("gankernels::adversarial_loss_triton", adversarial_loss_triton, mutates_args=())
define(
    "gankernels::adversarial_loss_backward_triton",
    adversarial_loss_backward_triton,
    mutates_args=(),
)
