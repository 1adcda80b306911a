"""Triton adversarial_loss: every critic / generator loss of docs/math.md section 3, fused.

Each loss is a weighted reduction of per-element terms over the two critic outputs (X = real,
Y = fake; swapped for the relativistic generator),

    "mean"  L = sum_j w_j h_X(x_j) / n_X + sum_k w_k h_Y(y_k) / n_Y   ("sum": no division)
    "none"  L_k = w_X,k h_X(x_k) + w_Y,k h_Y(y_k)   (per element, x and y of one shape)

where each h is sign * F(v - shift) + lin * v for one elementwise function F of the table below
(`_term`, whose constants - the -log 2 of jensen_shannon, the -1 of reverse_kl - are part of
each element's term, so weighted too), lin is the label-smoothing slope (minimax critic's real
term), and the shift is 0 except for the relativistic loss, whose shifts are the plain means of
the other side:

    relativistic critic  L = c_X sum_X w sp(m_Y - x) + c_Y sum_Y w sp(y - m_X)
    dL/dx_j = G c_X w_j (-sigma(m_Y - x_j)) - (G / n_X) c_Y D_Y,  D_Y = sum_Y w sigma(y - m_X)
    dL/dy_k = G c_Y w_k sigma(y_k - m_X) - (G / n_Y) c_X D_X,  D_X = sum_X w (-sigma(m_Y - x))

(c = 1 / n for "mean", 1 otherwise; G = grad_loss, inside the sums D when it is per element.)
The backward is elementwise given the D. Small outputs (the usual [B] logits) take one
single-program launch for the whole loss or gradient; larger ones use per-program partial sums
added in a fixed order by a single-program kernel (deterministic).
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
    flat_key,
    flat_workspace,
    is_dense,
    launchable,
    next_pow2,
    triton_opmath,
)

# Elementwise functions F(v) (derivative in the comment); p is the least-squares label, or the
# hinge's margin shift (p = m - 1 for the real term, 1 - m for the fake one). The
# names are those of csrc/loss_terms.h's Fn; the C++ table folds the last four into a shared F
# with a shift or constant (Exp shifted by 1, Identity - 1, Softplus(-v) and Softplus - log 2),
# and HALF_SQUARE's label into the shift.
ZERO = tl.constexpr(0)  # 0
SOFTPLUS = tl.constexpr(1)  # sp(v), sigma(v)
SOFTPLUS_NEG = tl.constexpr(2)  # sp(-v), -sigma(-v)
IDENTITY = tl.constexpr(3)  # v, 1
RELU_ONE_MINUS = tl.constexpr(4)  # relu(1 - (v - p)), -[1 - (v - p) > 0]
RELU_ONE_PLUS = tl.constexpr(5)  # relu(1 + (v - p)), [1 + (v - p) > 0]
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
        t = 1.0 - (v - p)
        if DERIV:
            out = tl.where(t > 0.0, -1.0, 0.0).to(OPMATH)
        else:
            out = tl.maximum(t, 0.0)
    elif F == RELU_ONE_PLUS:
        t = 1.0 + (v - p)
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
    w_ptr,
    g_ptr,
    n,
    shift,
    p,
    lin,
    start,
    step,
    F: tl.constexpr,
    SIGN: tl.constexpr,
    DERIV: tl.constexpr,
    HAS_W: tl.constexpr,
    HAS_G: tl.constexpr,
    BLOCK: tl.constexpr,
    OPMATH: tl.constexpr,
):
    """sum of [g *] [w *] (SIGN * F(v - shift) + lin * v), or of [g *] [w *] (SIGN * F'(v - shift)
    + lin) when DERIV, over blocks start, start + step, ..."""
    acc = tl.zeros([BLOCK], OPMATH)
    for blk in range(start, tl.cdiv(n, BLOCK), step):
        offs = tl.cast(blk, tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        raw = tl.load(ptr + offs, mask=mask, other=0.0).to(OPMATH)
        h = SIGN * _term(raw - shift, p, F, DERIV, OPMATH)
        if DERIV:
            h = h + lin
        else:
            h = h + tl.where(lin == 0.0, 0.0, lin * raw)  # no 0 * inf for an infinite logit
        if HAS_W:
            h = h * tl.load(w_ptr + offs, mask=mask, other=0.0)
        if HAS_G:
            h = h * tl.load(g_ptr + offs, mask=mask, other=0.0)
        acc += tl.where(mask, h, 0.0)
    return tl.sum(acc, axis=0)


@triton.jit
def _side_grad(
    ptr,
    w_ptr,
    g_ptr,
    out_ptr,
    n,
    shift,
    p,
    lin,
    coef,
    extra,
    start,
    step,
    stop,
    F: tl.constexpr,
    SIGN: tl.constexpr,
    HAS_W: tl.constexpr,
    HAS_G: tl.constexpr,
    BLOCK: tl.constexpr,
    OPMATH: tl.constexpr,
):
    """out = coef * [g *] [w *] (SIGN * F'(v - shift) + lin) + extra over blocks start,
    start + step, ... < stop."""
    for blk in range(start, stop, step):
        offs = tl.cast(blk, tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        v = tl.load(ptr + offs, mask=mask, other=0.0).to(OPMATH) - shift
        d = SIGN * _term(v, p, F, True, OPMATH) + lin
        if HAS_W:
            d = d * tl.load(w_ptr + offs, mask=mask, other=0.0)
        if HAS_G:
            d = d * tl.load(g_ptr + offs, mask=mask, other=0.0)
        g = coef * d + extra
        tl.store(out_ptr + offs, g.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _pair_map(
    x_ptr,
    y_ptr,
    wx_ptr,
    wy_ptr,
    out_ptr,
    n,
    m_x,
    m_y,
    px,
    py,
    lx,
    ly,
    start,
    step,
    stop,
    FX: tl.constexpr,
    SX: tl.constexpr,
    FY: tl.constexpr,
    SY: tl.constexpr,
    HAS_WX: tl.constexpr,
    HAS_WY: tl.constexpr,
    BLOCK: tl.constexpr,
    OPMATH: tl.constexpr,
):
    """Reduction "none": out_k = [w_X,k] h_X(x_k) + [w_Y,k] h_Y(y_k) (x and y stored in one
    order; no X term when FX is ZERO) over blocks start, start + step, ... < stop."""
    for blk in range(start, stop, step):
        offs = tl.cast(blk, tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        yv = tl.load(y_ptr + offs, mask=mask, other=0.0).to(OPMATH)
        h = SY * _term(yv - m_x, py, FY, False, OPMATH) + tl.where(ly == 0.0, 0.0, ly * yv)
        if HAS_WY:
            h = h * tl.load(wy_ptr + offs, mask=mask, other=0.0)
        if FX != ZERO:
            xv = tl.load(x_ptr + offs, mask=mask, other=0.0).to(OPMATH)
            hx = SX * _term(xv - m_y, px, FX, False, OPMATH) + tl.where(lx == 0.0, 0.0, lx * xv)
            if HAS_WX:
                hx = hx * tl.load(wx_ptr + offs, mask=mask, other=0.0)
            h = hx + h
        tl.store(out_ptr + offs, h, mask=mask)


@triton.jit
def _small_kernel(
    x_ptr,
    y_ptr,
    wx_ptr,
    wy_ptr,
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
    lin_x: tl.float64,
    lin_y: tl.float64,
    FX: tl.constexpr,
    SX: tl.constexpr,
    FY: tl.constexpr,
    SY: tl.constexpr,
    REL: tl.constexpr,
    BACKWARD: tl.constexpr,
    MEAN: tl.constexpr,
    NONE: tl.constexpr,
    HAS_WX: tl.constexpr,
    HAS_WY: tl.constexpr,
    BLOCK: tl.constexpr,
    OPMATH: tl.constexpr,
):
    """The whole loss (or its gradient) in one program, for outputs of a few blocks. NONE: the
    per-element loss (forward), or a per-element grad_loss (backward)."""
    ix = tl.full([], inv_nx, OPMATH)
    iy = tl.full([], inv_ny, OPMATH)
    px = tl.full([], p_x, OPMATH)
    py = tl.full([], p_y, OPMATH)
    lx = tl.full([], lin_x, OPMATH)
    ly = tl.full([], lin_y, OPMATH)
    zero = tl.zeros([], OPMATH)
    if MEAN:
        cx = ix
        cy = iy
    else:
        cx = tl.full([], 1.0, OPMATH)
        cy = tl.full([], 1.0, OPMATH)
    m_x = zero
    m_y = zero
    if REL:
        m_x = (
            _side_sum(
                x_ptr,
                x_ptr,
                x_ptr,
                n_x,
                zero,
                zero,
                zero,
                0,
                1,
                IDENTITY,
                1,
                False,
                False,
                False,
                BLOCK,
                OPMATH,
            )
            * ix
        )
        m_y = (
            _side_sum(
                y_ptr,
                y_ptr,
                y_ptr,
                n_y,
                zero,
                zero,
                zero,
                0,
                1,
                IDENTITY,
                1,
                False,
                False,
                False,
                BLOCK,
                OPMATH,
            )
            * iy
        )
    if BACKWARD:
        if NONE:
            gs = tl.full([], 1.0, OPMATH)
        else:
            gs = tl.load(gl_ptr).to(OPMATH)
        extra_x = zero
        extra_y = zero
        if REL:
            d_x = _side_sum(
                x_ptr,
                wx_ptr,
                gl_ptr,
                n_x,
                m_y,
                px,
                lx,
                0,
                1,
                FX,
                SX,
                True,
                HAS_WX,
                NONE,
                BLOCK,
                OPMATH,
            )
            d_y = _side_sum(
                y_ptr,
                wy_ptr,
                gl_ptr,
                n_y,
                m_x,
                py,
                ly,
                0,
                1,
                FY,
                SY,
                True,
                HAS_WY,
                NONE,
                BLOCK,
                OPMATH,
            )
            extra_y = -(gs * iy) * (cx * d_x)
            extra_x = -(gs * ix) * (cy * d_y)
        _side_grad(
            x_ptr,
            wx_ptr,
            gl_ptr,
            gx_ptr,
            n_x,
            m_y,
            px,
            lx,
            gs * cx,
            extra_x,
            0,
            1,
            tl.cdiv(n_x, BLOCK),
            FX,
            SX,
            HAS_WX,
            NONE,
            BLOCK,
            OPMATH,
        )
        _side_grad(
            y_ptr,
            wy_ptr,
            gl_ptr,
            gy_ptr,
            n_y,
            m_x,
            py,
            ly,
            gs * cy,
            extra_y,
            0,
            1,
            tl.cdiv(n_y, BLOCK),
            FY,
            SY,
            HAS_WY,
            NONE,
            BLOCK,
            OPMATH,
        )
    elif NONE:
        _pair_map(
            x_ptr,
            y_ptr,
            wx_ptr,
            wy_ptr,
            out_ptr,
            n_y,
            m_x,
            m_y,
            px,
            py,
            lx,
            ly,
            0,
            1,
            tl.cdiv(n_y, BLOCK),
            FX,
            SX,
            FY,
            SY,
            HAS_WX,
            HAS_WY,
            BLOCK,
            OPMATH,
        )
    else:
        s_x = _side_sum(
            x_ptr,
            wx_ptr,
            x_ptr,
            n_x,
            m_y,
            px,
            lx,
            0,
            1,
            FX,
            SX,
            False,
            HAS_WX,
            False,
            BLOCK,
            OPMATH,
        )
        s_y = _side_sum(
            y_ptr,
            wy_ptr,
            y_ptr,
            n_y,
            m_x,
            py,
            ly,
            0,
            1,
            FY,
            SY,
            False,
            HAS_WY,
            False,
            BLOCK,
            OPMATH,
        )
        tl.store(out_ptr, s_x * cx + s_y * cy)


@triton.jit
def _partial_kernel(
    x_ptr,
    y_ptr,
    wx_ptr,
    wy_ptr,
    gl_ptr,
    stats_ptr,
    part_ptr,
    n_x,
    n_y,
    p_x: tl.float64,
    p_y: tl.float64,
    lin_x: tl.float64,
    lin_y: tl.float64,
    FX: tl.constexpr,
    SX: tl.constexpr,
    FY: tl.constexpr,
    SY: tl.constexpr,
    DERIV: tl.constexpr,
    SHIFTED: tl.constexpr,
    HAS_WX: tl.constexpr,
    HAS_WY: tl.constexpr,
    HAS_G: tl.constexpr,
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
        x_ptr,
        wx_ptr,
        gl_ptr,
        n_x,
        m_y,
        tl.full([], p_x, OPMATH),
        tl.full([], lin_x, OPMATH),
        pid,
        NPROG,
        FX,
        SX,
        DERIV,
        HAS_WX,
        HAS_G,
        BLOCK,
        OPMATH,
    )
    s_y = _side_sum(
        y_ptr,
        wy_ptr,
        gl_ptr,
        n_y,
        m_x,
        tl.full([], p_y, OPMATH),
        tl.full([], lin_y, OPMATH),
        pid,
        NPROG,
        FY,
        SY,
        DERIV,
        HAS_WY,
        HAS_G,
        BLOCK,
        OPMATH,
    )
    tl.store(part_ptr + 2 * pid, s_x)
    tl.store(part_ptr + 2 * pid + 1, s_y)


@triton.jit
def _combine_kernel(
    part_ptr,
    out_ptr,
    NPROG,
    c_x: tl.float64,
    c_y: tl.float64,
    COMBINE: tl.constexpr,
    BLOCK_P: tl.constexpr,
    OPMATH: tl.constexpr,
):
    """Adds the partials in a fixed order: out = [c_x sum_x + c_y sum_y] or
    [c_x sum_x, c_y sum_y]."""
    offs = tl.arange(0, BLOCK_P)
    mask = offs < NPROG
    s_x = tl.sum(tl.load(part_ptr + 2 * offs, mask=mask, other=0.0), axis=0)
    s_y = tl.sum(tl.load(part_ptr + 2 * offs + 1, mask=mask, other=0.0), axis=0)
    s_x = s_x * tl.full([], c_x, OPMATH)
    s_y = s_y * tl.full([], c_y, OPMATH)
    if COMBINE:
        tl.store(out_ptr, s_x + s_y)
    else:
        tl.store(out_ptr, s_x)
        tl.store(out_ptr + 1, s_y)


@triton.jit
def _grad_kernel(
    x_ptr,
    y_ptr,
    wx_ptr,
    wy_ptr,
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
    lin_x: tl.float64,
    lin_y: tl.float64,
    FX: tl.constexpr,
    SX: tl.constexpr,
    FY: tl.constexpr,
    SY: tl.constexpr,
    REL: tl.constexpr,
    MEAN: tl.constexpr,
    HAS_WX: tl.constexpr,
    HAS_WY: tl.constexpr,
    HAS_G: tl.constexpr,
    BLOCK: tl.constexpr,
    OPMATH: tl.constexpr,
):
    """One block of either side's gradient per program; stats = [m_X, m_Y, c_X D_X, c_Y D_Y].
    HAS_G: grad_loss per element (reduction "none"), else one element."""
    pid = tl.program_id(0)
    ix = tl.full([], inv_nx, OPMATH)
    iy = tl.full([], inv_ny, OPMATH)
    if HAS_G:
        gs = tl.full([], 1.0, OPMATH)
    else:
        gs = tl.load(gl_ptr).to(OPMATH)
    if MEAN:
        cx = ix
        cy = iy
    else:
        cx = tl.full([], 1.0, OPMATH)
        cy = tl.full([], 1.0, OPMATH)
    m_x = tl.zeros([], OPMATH)
    m_y = tl.zeros([], OPMATH)
    extra_x = tl.zeros([], OPMATH)
    extra_y = tl.zeros([], OPMATH)
    if REL:
        m_x = tl.load(stats_ptr).to(OPMATH)
        m_y = tl.load(stats_ptr + 1).to(OPMATH)
        extra_y = -(gs * iy) * tl.load(stats_ptr + 2).to(OPMATH)
        extra_x = -(gs * ix) * tl.load(stats_ptr + 3).to(OPMATH)
    if pid < blocks_x:
        _side_grad(
            x_ptr,
            wx_ptr,
            gl_ptr,
            gx_ptr,
            n_x,
            m_y,
            tl.full([], p_x, OPMATH),
            tl.full([], lin_x, OPMATH),
            gs * cx,
            extra_x,
            pid,
            1,
            pid + 1,
            FX,
            SX,
            HAS_WX,
            HAS_G,
            BLOCK,
            OPMATH,
        )
    else:
        _side_grad(
            y_ptr,
            wy_ptr,
            gl_ptr,
            gy_ptr,
            n_y,
            m_x,
            tl.full([], p_y, OPMATH),
            tl.full([], lin_y, OPMATH),
            gs * cy,
            extra_y,
            pid - blocks_x,
            1,
            pid - blocks_x + 1,
            FY,
            SY,
            HAS_WY,
            HAS_G,
            BLOCK,
            OPMATH,
        )


@triton.jit
def _none_kernel(
    x_ptr,
    y_ptr,
    wx_ptr,
    wy_ptr,
    stats_ptr,
    out_ptr,
    n,
    p_x: tl.float64,
    p_y: tl.float64,
    lin_x: tl.float64,
    lin_y: tl.float64,
    FX: tl.constexpr,
    SX: tl.constexpr,
    FY: tl.constexpr,
    SY: tl.constexpr,
    REL: tl.constexpr,
    HAS_WX: tl.constexpr,
    HAS_WY: tl.constexpr,
    BLOCK: tl.constexpr,
    OPMATH: tl.constexpr,
):
    """One block of the per-element loss (reduction "none") per program; stats = [m_X, m_Y]."""
    pid = tl.program_id(0)
    m_x = tl.zeros([], OPMATH)
    m_y = tl.zeros([], OPMATH)
    if REL:
        m_x = tl.load(stats_ptr).to(OPMATH)
        m_y = tl.load(stats_ptr + 1).to(OPMATH)
    _pair_map(
        x_ptr,
        y_ptr,
        wx_ptr,
        wy_ptr,
        out_ptr,
        n,
        m_x,
        m_y,
        tl.full([], p_x, OPMATH),
        tl.full([], p_y, OPMATH),
        tl.full([], lin_x, OPMATH),
        tl.full([], lin_y, OPMATH),
        pid,
        1,
        pid + 1,
        FX,
        SX,
        FY,
        SY,
        HAS_WX,
        HAS_WY,
        BLOCK,
        OPMATH,
    )


def _plan(
    kind: str,
    role: str,
    a: float,
    b: float,
    c: float,
    nonsaturating: bool,
    label_smoothing: float = 0.0,
    margin: float = 1.0,
):
    """((F_X, sign_X, p_X, lin_X), (F_Y, sign_Y, p_Y, lin_Y), relativistic, swap) for one
    loss: each term is sign * F(v - shift; p) + lin * v."""
    none = (ZERO, 1, 0.0, 0.0)
    if role == "critic":
        if kind in ("minimax", "nonsaturating"):
            # TF-GAN's one-sided label smoothing: sp(-v) + (s / 2) v on the real side.
            smooth = 0.5 * label_smoothing
            return (SOFTPLUS_NEG, 1, 0.0, smooth), (SOFTPLUS, 1, 0.0, 0.0), False, False
        if kind == "wasserstein":
            return (IDENTITY, -1, 0.0, 0.0), (IDENTITY, 1, 0.0, 0.0), False, False
        if kind == "hinge":
            # relu(m - v_r) = relu(1 - (v_r - (m - 1))), relu(m + v_g) = relu(1 + (v_g - (1 - m)))
            real = (RELU_ONE_MINUS, 1, margin - 1.0, 0.0)
            return real, (RELU_ONE_PLUS, 1, 1.0 - margin, 0.0), False, False
        if kind == "least_squares":
            return (HALF_SQUARE, 1, b, 0.0), (HALF_SQUARE, 1, a, 0.0), False, False
        if kind == "relativistic":
            return (SOFTPLUS_NEG, 1, 0.0, 0.0), (SOFTPLUS, 1, 0.0, 0.0), True, False
        f, s = _ACTIVATION[kind]
        return (f, -s, 0.0, 0.0), (*_CONJUGATE[kind], 0.0, 0.0), False, False
    if kind == "minimax":
        return none, (SOFTPLUS, -1, 0.0, 0.0), False, False
    if kind == "nonsaturating":
        return none, (SOFTPLUS_NEG, 1, 0.0, 0.0), False, False
    if kind in ("wasserstein", "hinge"):
        return none, (IDENTITY, -1, 0.0, 0.0), False, False
    if kind == "least_squares":
        return none, (HALF_SQUARE, 1, c, 0.0), False, False
    if kind == "relativistic":
        # The generator's loss is the critic's with real and fake exchanged.
        return (SOFTPLUS_NEG, 1, 0.0, 0.0), (SOFTPLUS, 1, 0.0, 0.0), True, True
    assert kind in _CONJUGATE, kind
    f, s = _ACTIVATION[kind] if nonsaturating else _CONJUGATE[kind]
    return none, (f, -s, 0.0, 0.0), False, False


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t if is_dense(t) else t.contiguous()


def _like(t: Optional[torch.Tensor], like: torch.Tensor, dtype: torch.dtype):
    """`t` (of `like`'s shape) as `dtype`, stored in the same element order as the dense `like`:
    itself when it already is, else one copy."""
    if t is None:
        return None
    if t.dtype == dtype and flat_key(t) is not None and flat_key(t) == flat_key(like):
        return t
    return torch.empty_like(like, dtype=dtype).copy_(t)


def _launch_shape(n_x: int, n_y: int) -> tuple[int, bool, int]:
    """(BLOCK, single, programs): single selects the one-program kernel, else `programs`
    programs share the blocks, grid-stride."""
    block = max(16, min(MAX_BLOCK, next_pow2(max(n_x, n_y))))
    blocks = triton.cdiv(n_x, block) + triton.cdiv(n_y, block)
    return block, blocks <= SMALL_BLOCKS, min(MAX_PROGRAMS, triton.cdiv(blocks, 4))


def _warps(block: int) -> int:
    return max(1, min(8, block // 256))


class _Problem:
    """One call's two sides (x, y) in the kernels' order, laid out for the kernels.

    Each side and its weights (opmath dtype) share one dense element order; with reduction
    "none" that order is fake_out's (dense, or contiguous), for both sides, the per-element
    loss and a per-element grad_loss, so that element k of each is the same position."""

    def __init__(
        self, real_out, fake_out, kind, role, params, real_weights, fake_weights, reduction
    ):
        (fx, sx, px, lx), (fy, sy, py, ly), rel, swap = _plan(kind, role, *params)
        x, y = (fake_out, real_out) if swap else (real_out, fake_out)
        wx, wy = (fake_weights, real_weights) if swap else (real_weights, fake_weights)
        if fx == ZERO:
            x, wx = None, None
        self.opmath = torch.float64 if fake_out.dtype == torch.float64 else torch.float32
        self.tl_opmath = triton_opmath(fake_out.dtype)
        self.none = reduction == "none"
        self.mean = reduction == "mean"
        self.x_in, self.y_in, self.swap, self.rel = x, y, swap, rel
        if self.none:
            self.base = _flat(fake_out)
            self.y = _like(y, self.base, y.dtype)
            self.x = _like(x, self.base, x.dtype) if x is not None else None
        else:
            self.y = _flat(y)
            self.x = _flat(x) if x is not None else None
        self.wy = _like(wy, self.y, self.opmath)
        self.wx = _like(wx, self.x, self.opmath) if self.x is not None else None
        self.n_x = self.x.numel() if self.x is not None else 0
        self.n_y = self.y.numel()
        self.consts = dict(FX=fx, SX=sx, FY=fy, SY=sy)
        self.scalars = (px, py, lx, ly)
        self.inv = (1.0 / self.n_x if self.n_x else 0.0, 1.0 / self.n_y)
        self.coef = self.inv if self.mean else (1.0, 1.0)  # c_X, c_Y: the reduction's factors
        self.part: Optional[torch.Tensor] = None  # the multi-program partials, when launched

    def pointers(self):
        """(x, y, wx, wy): a tensor for each pointer argument; unused ones are never read."""
        y = self.y
        x = self.x if self.x is not None else y
        wx = self.wx if self.wx is not None else x
        wy = self.wy if self.wy is not None else y
        return x, y, wx, wy

    def flags(self):
        return dict(HAS_WX=self.wx is not None, HAS_WY=self.wy is not None)

    def means(self, stats, programs, block) -> None:
        """stats[0:2] = [m_X, m_Y], the plain means, by the partial and combine kernels."""
        x, y, _, _ = self.pointers()
        wrap_triton(_partial_kernel)[(programs,)](
            x,
            y,
            x,
            y,
            y,
            stats,
            self.part,
            self.n_x,
            self.n_y,
            0.0,
            0.0,
            0.0,
            0.0,
            FX=IDENTITY,
            SX=1,
            FY=IDENTITY,
            SY=1,
            DERIV=False,
            SHIFTED=False,
            HAS_WX=False,
            HAS_WY=False,
            HAS_G=False,
            NPROG=programs,
            BLOCK=block,
            OPMATH=self.tl_opmath,
            num_warps=_warps(block),
        )
        wrap_triton(_combine_kernel)[(1,)](
            self.part,
            stats,
            programs,
            *self.inv,
            COMBINE=False,
            BLOCK_P=MAX_PROGRAMS,
            OPMATH=self.tl_opmath,
            num_warps=4,
        )

    def sums(self, gl, stats, out, combine, deriv, has_g, programs, block) -> None:
        """out = c_X S_X + c_Y S_Y (combine) or [c_X S_X, c_Y S_Y] for the weighted sums S of
        the terms (or of their derivatives, times a per-element grad_loss when has_g)."""
        x, y, wx, wy = self.pointers()
        wrap_triton(_partial_kernel)[(programs,)](
            x,
            y,
            wx,
            wy,
            gl,
            stats,
            self.part,
            self.n_x,
            self.n_y,
            *self.scalars,
            **self.consts,
            DERIV=deriv,
            SHIFTED=self.rel,
            **self.flags(),
            HAS_G=has_g,
            NPROG=programs,
            BLOCK=block,
            OPMATH=self.tl_opmath,
            num_warps=_warps(block),
        )
        wrap_triton(_combine_kernel)[(1,)](
            self.part,
            out,
            programs,
            *self.coef,
            COMBINE=combine,
            BLOCK_P=MAX_PROGRAMS,
            OPMATH=self.tl_opmath,
            num_warps=4,
        )


def _forward(
    real_out: Optional[torch.Tensor],
    fake_out: torch.Tensor,
    kind: str,
    role: str,
    params: tuple,
    real_weights: Optional[torch.Tensor],
    fake_weights: Optional[torch.Tensor],
    reduction: str,
) -> torch.Tensor:
    pb = _Problem(real_out, fake_out, kind, role, params, real_weights, fake_weights, reduction)
    if pb.none:
        loss = torch.empty_like(fake_out, dtype=pb.opmath)
        out = flat_workspace(loss, pb.base)
    else:
        loss = out = fake_out.new_empty((), dtype=pb.opmath)
    x, y, wx, wy = pb.pointers()
    block, single, programs = _launch_shape(pb.n_x, pb.n_y)
    if not launchable(y):
        return loss
    if single:
        wrap_triton(_small_kernel)[(1,)](
            x,
            y,
            wx,
            wy,
            out,
            out,
            x,
            y,
            pb.n_x,
            pb.n_y,
            *pb.inv,
            *pb.scalars,
            **pb.consts,
            REL=pb.rel,
            BACKWARD=False,
            MEAN=pb.mean,
            NONE=pb.none,
            **pb.flags(),
            BLOCK=block,
            OPMATH=pb.tl_opmath,
            num_warps=_warps(block),
        )
    else:
        pb.part = fake_out.new_empty((2 * programs,), dtype=pb.opmath)
        stats = fake_out.new_empty((2,), dtype=pb.opmath)
        if pb.rel:
            pb.means(stats, programs, block)
        if pb.none:
            wrap_triton(_none_kernel)[(triton.cdiv(pb.n_y, block),)](
                x,
                y,
                wx,
                wy,
                stats,
                out,
                pb.n_y,
                *pb.scalars,
                **pb.consts,
                REL=pb.rel,
                **pb.flags(),
                BLOCK=block,
                OPMATH=pb.tl_opmath,
                num_warps=_warps(block),
            )
        else:
            pb.sums(y, stats, out, True, False, False, programs, block)
    if out is not loss:
        loss.copy_(out)
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
    label_smoothing: float = 0.0,
    margin: float = 1.0,
    real_weights: Optional[torch.Tensor] = None,
    fake_weights: Optional[torch.Tensor] = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """The loss of `role` for `kind`, weighted and reduced (formulas in
    gankernels.reference.adversarial_loss): a float32 scalar (float64 for float64 outputs), or
    for reduction "none" per-element losses of that dtype shaped like fake_out."""
    return _forward(
        real_out,
        fake_out,
        kind,
        role,
        (a, b, c, nonsaturating, label_smoothing, margin),
        real_weights,
        fake_weights,
        reduction,
    )


def _backward(
    grad_loss: torch.Tensor,
    real_out: Optional[torch.Tensor],
    fake_out: torch.Tensor,
    kind: str,
    role: str,
    params: tuple,
    real_weights: Optional[torch.Tensor],
    fake_weights: Optional[torch.Tensor],
    reduction: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    pb = _Problem(real_out, fake_out, kind, role, params, real_weights, fake_weights, reduction)
    # One element (read by the kernels: no host sync), or per element in the sides' order.
    gl = _like(grad_loss, pb.base, pb.opmath) if pb.none else grad_loss
    x, y, wx, wy = pb.pointers()
    gy_out = torch.empty_like(pb.y_in)
    gy = flat_workspace(gy_out, y)
    if pb.x is not None:
        gx_out = torch.empty_like(pb.x_in)
        gx = flat_workspace(gx_out, x)
    else:
        gx_out, gx = None, gy  # never touched: n_x = 0
    block, single, programs = _launch_shape(pb.n_x, pb.n_y)
    if launchable(y):
        if single:
            wrap_triton(_small_kernel)[(1,)](
                x,
                y,
                wx,
                wy,
                gl,
                gl,
                gx,
                gy,
                pb.n_x,
                pb.n_y,
                *pb.inv,
                *pb.scalars,
                **pb.consts,
                REL=pb.rel,
                BACKWARD=True,
                MEAN=pb.mean,
                NONE=pb.none,
                **pb.flags(),
                BLOCK=block,
                OPMATH=pb.tl_opmath,
                num_warps=_warps(block),
            )
        else:
            stats = fake_out.new_empty((4,), dtype=pb.opmath)
            if pb.rel:
                pb.part = fake_out.new_empty((2 * programs,), dtype=pb.opmath)
                pb.means(stats, programs, block)
                pb.sums(gl, stats, stats[2:], False, True, pb.none, programs, block)
            blocks_x = triton.cdiv(pb.n_x, block)
            wrap_triton(_grad_kernel)[(blocks_x + triton.cdiv(pb.n_y, block),)](
                x,
                y,
                wx,
                wy,
                gl,
                stats,
                gx,
                gy,
                pb.n_x,
                pb.n_y,
                blocks_x,
                *pb.inv,
                *pb.scalars,
                **pb.consts,
                REL=pb.rel,
                MEAN=pb.mean,
                **pb.flags(),
                HAS_G=pb.none,
                BLOCK=block,
                OPMATH=pb.tl_opmath,
                num_warps=_warps(block),
            )
    if gy is not gy_out:
        gy_out.copy_(gy)
    if gx_out is not None and gx is not gx_out:
        gx_out.copy_(gx)
    if pb.swap:
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
    label_smoothing: float,
    margin: float,
    real_weights: Optional[torch.Tensor],
    fake_weights: Optional[torch.Tensor],
    reduction: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(grad_real, grad_fake) = grad_loss * dL/dv in the outputs' dtype (grad_loss one element,
    or fake_out's shape for reduction "none"); grad_real is an empty [0] tensor when real_out
    is None, zeros when the loss does not read it. The weights are constants."""
    return _backward(
        grad_loss,
        real_out,
        fake_out,
        kind,
        role,
        (a, b, c, nonsaturating, label_smoothing, margin),
        real_weights,
        fake_weights,
        reduction,
    )


define("gankernels::adversarial_loss_triton", adversarial_loss_triton, mutates_args=())
define(
    "gankernels::adversarial_loss_backward_triton",
    adversarial_loss_backward_triton,
    mutates_args=(),
)
