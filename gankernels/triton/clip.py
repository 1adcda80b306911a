"""Triton clip_: w <- clamp(w, -c, c) in place for a whole parameter list (docs/math.md section 4).

One launch per dtype in the list (usually one in all): every tensor is cut into BLOCK-element
chunks, and a table of int64 addresses, sizes and per-chunk (tensor, start) pairs tells each
program where its chunk lives (multi-tensor apply, as in apex / PyTorch's MultiTensorApply).
The table is built once per parameter list and cached, and reaches the GPU by a pinned,
non-blocking copy: no host synchronisation. Each program also counts its elements left at +-c
(c rounded to the tensor's dtype, as gankernels.reference.clip_), added atomically into one
int64 counter: integer sums do not depend on the order, so the count is deterministic.
NaN stays NaN (comparisons with NaN are false), +-inf become +-c.

Under tracing (fake or functional tensors: torch.compile, make_fx) addresses do not exist, so the
traced op launches one traceable kernel per tensor instead.
"""

from __future__ import annotations

import math
import struct
from collections import OrderedDict

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from ._common import TL_DTYPES, chunk_table, define, is_dense, launchable, traced

BLOCK = 2048
NUM_WARPS = 4
_TABLE_CACHE: OrderedDict = OrderedDict()


@triton.jit
def _clip_table_kernel(
    table_ptr,
    count_ptr,
    n_tensors,
    n_chunks,
    c_rounded: tl.float64,
    DTYPE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """table = [addresses (n_tensors) | sizes (n_tensors) | chunk tensor (n_chunks) |
    chunk start (n_chunks)], all int64."""
    pid = tl.program_id(0)
    t = tl.load(table_ptr + 2 * n_tensors + pid)
    start = tl.load(table_ptr + 2 * n_tensors + n_chunks + pid)
    address = tl.load(table_ptr + t)
    size = tl.load(table_ptr + n_tensors + t)
    ptr = address.to(tl.pointer_type(DTYPE), bitcast=True)
    offs = start + tl.arange(0, BLOCK)
    mask = offs < size
    # The clamp below is repeated in _clip_tensor_kernel rather than shared through a helper:
    # the Triton interpreter re-patches the language on every nested jit call (~ms each).
    x = tl.load(ptr + offs, mask=mask)
    # Half types are compared and clamped in float32: exact, as c_rounded is representable in
    # DTYPE, and the interpreter's own bfloat16 arithmetic works on raw bits.
    if DTYPE == tl.float64:
        xf = x
        cf = tl.full([], c_rounded, tl.float64)
    else:
        xf = x.to(tl.float32)
        cf = tl.full([], c_rounded, tl.float32)
    yf = tl.where(xf > cf, cf, tl.where(xf < -cf, -cf, xf))  # NaN fails both tests: stays NaN
    tl.store(ptr + offs, yf.to(DTYPE), mask=mask)
    at_c = ((yf == cf) | (yf == -cf)) & mask
    tl.atomic_add(count_ptr, tl.sum(at_c.to(tl.int32), axis=0).to(tl.int64))


@triton.jit
def _clip_tensor_kernel(
    ptr, count_ptr, n, c_rounded: tl.float64, DTYPE: tl.constexpr, BLOCK: tl.constexpr
):
    """One dense tensor: the traceable path."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(ptr + offs, mask=mask)
    if DTYPE == tl.float64:
        xf = x
        cf = tl.full([], c_rounded, tl.float64)
    else:
        xf = x.to(tl.float32)
        cf = tl.full([], c_rounded, tl.float32)
    yf = tl.where(xf > cf, cf, tl.where(xf < -cf, -cf, xf))
    tl.store(ptr + offs, yf.to(DTYPE), mask=mask)
    at_c = ((yf == cf) | (yf == -cf)) & mask
    tl.atomic_add(count_ptr, tl.sum(at_c.to(tl.int32), axis=0).to(tl.int64))


def round_to(c: float, dtype: torch.dtype) -> float:
    """c rounded to `dtype` as torch.tensor(c, dtype=dtype) does (double -> float -> dtype,
    nearest-even), in plain Python so it also runs while tracing."""
    if dtype == torch.float64:
        return float(c)
    try:
        c32 = struct.unpack("f", struct.pack("f", c))[0]
    except OverflowError:
        c32 = math.inf
    if dtype == torch.float16:
        try:
            return struct.unpack("e", struct.pack("e", c32))[0]
        except OverflowError:
            return math.inf
    if dtype == torch.bfloat16:
        bits = struct.unpack("I", struct.pack("f", c32))[0]
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
        return struct.unpack("f", struct.pack("I", bits))[0]
    return c32


def _table(group: list[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, int]:
    """(device int64 table, chunk count) for tensors of one dtype: [addresses | sizes | chunk
    tensor | chunk start], cached by address and size, which is all the table holds."""
    sizes = [p.numel() for p in group]
    addresses = [p.data_ptr() for p in group]
    key = (device, tuple(zip(addresses, sizes)))
    return chunk_table(_TABLE_CACHE, key, [addresses], sizes, BLOCK, device)


def clip_per_tensor(params: list[torch.Tensor], c: float, count: torch.Tensor) -> None:
    """One launch per non-empty dense tensor, adding into `count`: what tracing records."""
    for p in params:
        n = p.numel()
        if n and launchable(p):
            wrap_triton(_clip_tensor_kernel)[(triton.cdiv(n, BLOCK),)](
                p,
                count,
                n,
                round_to(c, p.dtype),
                DTYPE=TL_DTYPES[p.dtype],
                BLOCK=BLOCK,
                num_warps=NUM_WARPS,
            )


def clip_multi_tensor(params: list[torch.Tensor], c: float, count: torch.Tensor) -> None:
    """One launch per dtype among the dense `params`, through the address table, adding into
    `count`."""
    groups: dict[torch.dtype, list[torch.Tensor]] = {}
    for p in params:
        if p.numel():
            groups.setdefault(p.dtype, []).append(p)
    for dtype, group in groups.items():
        table, chunks = _table(group, count.device)
        wrap_triton(_clip_table_kernel)[(chunks,)](
            table,
            count,
            len(group),
            chunks,
            round_to(c, dtype),
            DTYPE=TL_DTYPES[dtype],
            BLOCK=BLOCK,
            num_warps=NUM_WARPS,
        )


def clip__triton(params: list[torch.Tensor], c: float) -> torch.Tensor:
    """w <- clamp(w, -c, c) in place for every tensor; returns the int64 count (0-dim, on the
    params' device) of elements equal to +-c afterwards, c rounded to each tensor's dtype."""
    count = torch.zeros((), dtype=torch.int64, device=params[0].device)
    # Dense tensors (any dimension order) are clamped as flat memory, in place.
    dense = [p for p in params if is_dense(p)]
    if traced(params):
        clip_per_tensor(dense, c, count)
    else:
        clip_multi_tensor(dense, c, count)
    for p in params:
        if not is_dense(p):
            # A strided view (rare for parameters): clamp a dense copy and write it back.
            tmp = p.contiguous()
            clip_per_tensor([tmp], c, count)
            p.copy_(tmp)
    return count


define("gankernels::clip__triton", clip__triton, mutates_args={"params"})
