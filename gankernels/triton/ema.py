"""Triton ema_: target <- target + (1 - decay) * (source - target) in place for two parameter
lists (an exponential moving average of a generator's weights), in torch.lerp's two forms:
t + w (s - t) for w = 1 - decay < 0.5, else s - (s - t) (1 - w).

Computed in the accumulation type (float32 for float16/bfloat16/float32, float64 for float64)
and rounded once to the target's dtype; w = 1 - decay is formed in float64 on the host and cast
to the accumulation type in the kernel, as torch rounds a Python scalar to a float32 tensor's
dtype. NaN and inf propagate as the formula says (inf - inf is NaN; decay 1 still gives
NaN for a non-finite difference, as 0 * inf is NaN).

One launch per dtype in the lists (usually one in all), as clip_ does: every pair is cut into
BLOCK-element chunks, and a table of int64 addresses (target, source), sizes and per-chunk
(pair, start) entries tells each program where its chunk lives (multi-tensor apply). The table
is built once per pair of lists and cached, and reaches the GPU by a pinned, non-blocking copy:
no host synchronisation. A pair stored in the same order (the usual case: parameters of two
copies of one module) is walked as flat memory; a strided target, or a source laid out otherwise
than its target, goes through a dense copy in the target's layout (rare).

Under tracing (fake or functional tensors: torch.compile, make_fx) addresses do not exist, so the
traced op launches one traceable kernel per pair instead.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from ._common import TL_DTYPES, chunk_table, define, flat_key, is_dense, launchable, traced

BLOCK = 2048
NUM_WARPS = 4
_TABLE_CACHE: OrderedDict = OrderedDict()


@triton.jit
def _ema_table_kernel(
    table_ptr,
    n_tensors,
    n_chunks,
    w: tl.float64,
    DTYPE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """table = [target addresses (n_tensors) | source addresses (n_tensors) | sizes (n_tensors)
    | chunk pair (n_chunks) | chunk start (n_chunks)], all int64."""
    pid = tl.program_id(0)
    i = tl.load(table_ptr + 3 * n_tensors + pid)
    start = tl.load(table_ptr + 3 * n_tensors + n_chunks + pid)
    t_address = tl.load(table_ptr + i)
    s_address = tl.load(table_ptr + n_tensors + i)
    size = tl.load(table_ptr + 2 * n_tensors + i)
    t_ptr = t_address.to(tl.pointer_type(DTYPE), bitcast=True)
    s_ptr = s_address.to(tl.pointer_type(DTYPE), bitcast=True)
    offs = start + tl.arange(0, BLOCK)
    mask = offs < size
    # The update below is repeated in _ema_tensor_kernel rather than shared through a helper:
    # the Triton interpreter re-patches the language on every nested jit call (~ms each).
    x = tl.load(t_ptr + offs, mask=mask)
    y = tl.load(s_ptr + offs, mask=mask)
    if DTYPE == tl.float64:
        xf = x
        yf = y
        wf = tl.full([], w, tl.float64)
    elif DTYPE == tl.bfloat16:
        # bfloat16 <-> float32 by hand, exactly as torch and the GPU convert: the interpreter's
        # casts mishandle subnormals and truncate. Widening is a 16-bit shift.
        xf = (x.to(tl.uint16, bitcast=True).to(tl.uint32) << 16).to(tl.float32, bitcast=True)
        yf = (y.to(tl.uint16, bitcast=True).to(tl.uint32) << 16).to(tl.float32, bitcast=True)
        wf = tl.full([], w, tl.float32)
    else:
        xf = x.to(tl.float32)
        yf = y.to(tl.float32)
        wf = tl.full([], w, tl.float32)
    # torch.lerp's two forms, exact at w = 0 (target kept) and w = 1 (source copied).
    d = yf - xf
    r = tl.where(wf < 0.5, xf + wf * d, yf - d * (1.0 - wf))
    if DTYPE == tl.bfloat16:
        # Narrowing rounds to nearest even (NaN becomes torch's quiet NaN 0x7FC0).
        bits = r.to(tl.uint32, bitcast=True)
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        out = tl.where(r != r, 0x7FC0, bits).to(tl.uint16).to(tl.bfloat16, bitcast=True)
    else:
        out = r.to(DTYPE)
    tl.store(t_ptr + offs, out, mask=mask)


@triton.jit
def _ema_tensor_kernel(t_ptr, s_ptr, n, w: tl.float64, DTYPE: tl.constexpr, BLOCK: tl.constexpr):
    """One pair of dense tensors stored in the same order: the traceable path."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(t_ptr + offs, mask=mask)
    y = tl.load(s_ptr + offs, mask=mask)
    if DTYPE == tl.float64:
        xf = x
        yf = y
        wf = tl.full([], w, tl.float64)
    elif DTYPE == tl.bfloat16:
        xf = (x.to(tl.uint16, bitcast=True).to(tl.uint32) << 16).to(tl.float32, bitcast=True)
        yf = (y.to(tl.uint16, bitcast=True).to(tl.uint32) << 16).to(tl.float32, bitcast=True)
        wf = tl.full([], w, tl.float32)
    else:
        xf = x.to(tl.float32)
        yf = y.to(tl.float32)
        wf = tl.full([], w, tl.float32)
    # torch.lerp's two forms, exact at w = 0 (target kept) and w = 1 (source copied).
    d = yf - xf
    r = tl.where(wf < 0.5, xf + wf * d, yf - d * (1.0 - wf))
    if DTYPE == tl.bfloat16:
        bits = r.to(tl.uint32, bitcast=True)
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        out = tl.where(r != r, 0x7FC0, bits).to(tl.uint16).to(tl.bfloat16, bitcast=True)
    else:
        out = r.to(DTYPE)
    tl.store(t_ptr + offs, out, mask=mask)


def _table(
    pairs: list[tuple[torch.Tensor, torch.Tensor]], device: torch.device
) -> tuple[torch.Tensor, int]:
    """(device int64 table, chunk count) for pairs of one dtype: [target addresses | source
    addresses | sizes | chunk pair | chunk start], cached by the addresses, sizes and dtypes."""
    key = (device, tuple((t.data_ptr(), s.data_ptr(), t.numel(), t.dtype) for t, s in pairs))
    addresses = [[t.data_ptr() for t, _ in pairs], [s.data_ptr() for _, s in pairs]]
    return chunk_table(_TABLE_CACHE, key, addresses, [t.numel() for t, _ in pairs], BLOCK, device)


def _same_order(t: torch.Tensor, s: torch.Tensor) -> bool:
    """Both dense with their elements stored in the same order: walkable as flat memory."""
    return is_dense(t) and flat_key(t) == flat_key(s)


def ema_per_tensor(pairs: list[tuple[torch.Tensor, torch.Tensor]], w: float) -> None:
    """One launch per non-empty pair of dense tensors stored in the same order: what tracing
    records."""
    for t, s in pairs:
        n = t.numel()
        if n and launchable(t):
            wrap_triton(_ema_tensor_kernel)[(triton.cdiv(n, BLOCK),)](
                t,
                s,
                n,
                w,
                DTYPE=TL_DTYPES[t.dtype],
                BLOCK=BLOCK,
                num_warps=NUM_WARPS,
            )


def ema_multi_tensor(pairs: list[tuple[torch.Tensor, torch.Tensor]], w: float) -> None:
    """One launch per dtype among the pairs of dense tensors stored in the same order, through
    the address table."""
    groups: dict[torch.dtype, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    for t, s in pairs:
        if t.numel():
            groups.setdefault(t.dtype, []).append((t, s))
    for dtype, group in groups.items():
        table, chunks = _table(group, group[0][0].device)
        wrap_triton(_ema_table_kernel)[(chunks,)](
            table,
            len(group),
            chunks,
            w,
            DTYPE=TL_DTYPES[dtype],
            BLOCK=BLOCK,
            num_warps=NUM_WARPS,
        )


def ema__triton(target: list[torch.Tensor], source: list[torch.Tensor], decay: float) -> None:
    """target[i] <- target[i] + (1 - decay) * (source[i] - target[i]) in place for every pair,
    in the accumulation type, rounded once to the target's dtype; `source` is only read."""
    w = 1.0 - float(decay)  # float64, cast to the accumulation type in the kernel
    # Pairs stored in the same order (any dimension order) are updated as flat memory, in place.
    flat = [(t, s) for t, s in zip(target, source, strict=True) if _same_order(t, s)]
    if traced([*target, *source]):
        ema_per_tensor(flat, w)
    else:
        ema_multi_tensor(flat, w)
    for t, s in zip(target, source, strict=True):
        if t.numel() and not _same_order(t, s):
            # Rare: a strided target, or a source laid out otherwise. Update a dense target
            # (the target itself when it is dense) from a source copied into its layout.
            dense_t = t if is_dense(t) else t.contiguous()
            dense_s = s if flat_key(s) == flat_key(dense_t) else torch.empty_like(dense_t).copy_(s)
            ema_per_tensor([(dense_t, dense_s)], w)
            if dense_t is not t:
                t.copy_(dense_t)


define("gankernels::ema__triton", ema__triton, mutates_args={"target"})
