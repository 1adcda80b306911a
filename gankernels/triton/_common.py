"""What the four Triton op modules share: op definition, launch heuristics, layout helpers.

Importing this module imports triton; `gankernels.triton.op()` does so only on first use.

Two modes of definition (`define`):
- compiled Triton (a GPU): `torch.library.triton_op`, kernels launched through
  `torch.library.wrap_triton`, so torch.compile / make_fx / export trace into the kernels.
- the Triton interpreter (TRITON_INTERPRET=1, CPU tensors): `wrap_triton` hands back the plain
  interpreted kernel, which cannot be traced, so the op is an opaque `custom_op` whose fake kernel
  is the same Python launcher with the launches skipped for fake tensors. torch.compile then calls
  the op as a black box; results are the same, only the kernels are not inlined.

Kernels keep nested @triton.jit calls few and out of inner loops where they can: the interpreter
re-patches triton.language on every nested call (milliseconds each), compiled Triton inlines them.
Float scalars are kernel arguments annotated tl.float64 and cast to the accumulation type inside
(float32, or float64 for float64 tensors), so float64 math sees the exact Python value.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Callable, Iterable, Optional, Union

import torch
import triton
import triton.language as tl

try:
    INTERPRETED: bool = bool(triton.knobs.runtime.interpret)
except AttributeError:  # older triton without knobs
    import os

    INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"


# The argument check of each op, by qualified name, run before its launcher: the package's
# checks (gankernels/ops/_checks.py) are put here by gankernels/ops/_triton.py, so that this
# package imports nothing from the rest of gankernels and a direct call of an op refuses bad
# input as the compiled ops do, instead of launching kernels on it.
CHECKS: dict[str, Callable[..., None]] = {}


def define(name: str, fn: Callable, mutates_args: Union[str, Iterable[str]]) -> Callable:
    """Registers `fn` as the op `name`, behind the check CHECKS[name] (when one is given): a
    triton_op when compiled, an opaque custom_op whose fake kernel is the same function
    (launches skipped on fake tensors) under the interpreter."""

    @functools.wraps(fn)  # the schema is inferred from fn's signature
    def checked(*args):
        check = CHECKS.get(name)
        if check is not None:
            check(*args)
        return fn(*args)

    if not INTERPRETED:
        return torch.library.triton_op(name, checked, mutates_args=mutates_args)
    op = torch.library.custom_op(name, checked, mutates_args=mutates_args)
    op.register_fake(checked)
    return op


def launchable(t: torch.Tensor) -> bool:
    """False only for a fake tensor under the interpreter: there the interpreted kernel would
    read its (absent) memory, while the compiled path's wrap_triton handles fake tensors itself."""
    if not INTERPRETED:
        return True
    from torch._subclasses.fake_tensor import is_fake

    return not is_fake(t)


# --- launch heuristics ------------------------------------------------------------------------
# No autotuning: each launch derives its tile from the problem size alone, so nothing is
# benchmarked at import or first call, and no GPU driver is touched before a kernel runs.

# Elements per program tile: 16 per thread at 4 warps on a GPU. The interpreter runs programs one
# after another, each as numpy array operations, so there far fewer, larger tiles are faster.
TILE = 2048 if not INTERPRETED else 1 << 16
MAX_GRID_Y = 65535
TARGET_PROGRAMS = 8192  # beyond this, programs loop over several tiles instead


def next_pow2(n: int) -> int:
    return 1 if n <= 1 else 1 << (int(n) - 1).bit_length()


def warps_for(elements: int) -> int:
    """num_warps for a tile: one warp per 512 elements, between 1 and 8."""
    return max(1, min(8, elements // 512))


def row_tiling(rows: int, cols: int) -> tuple[int, int, int, int]:
    """(ROWS, BLOCK_N, ITERS, NBLK) for a [rows, cols] per-sample problem: tiles of ROWS x BLOCK_N
    elements, each program covering ITERS tiles along the sample, NBLK programs per row block.

    Many short samples (toy 2-D data) share one tile; a long sample is split across programs
    whose partial results a second small kernel adds in a fixed order (deterministic).
    """
    block_n = max(2, min(next_pow2(cols), TILE))
    rows_per = max(1, min(next_pow2(rows), TILE // block_n))
    row_blocks = triton.cdiv(rows, rows_per)
    col_tiles = max(1, triton.cdiv(cols, block_n))
    iters = max(1, triton.cdiv(row_blocks * col_tiles, TARGET_PROGRAMS))
    iters = max(iters, triton.cdiv(col_tiles, MAX_GRID_Y))
    iters = min(iters, col_tiles)
    return rows_per, block_n, iters, triton.cdiv(col_tiles, iters)


# --- layouts ----------------------------------------------------------------------------------


def _dense_dims(sizes, strides) -> bool:
    expected = 1
    for stride, size in sorted((st, sz) for sz, st in zip(sizes, strides, strict=True) if sz != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def is_dense(t: torch.Tensor) -> bool:
    """Non-overlapping and dense (any dimension order): its numel elements fill one block."""
    return _dense_dims(t.shape, t.stride())


def sample_key(t: torch.Tensor) -> Optional[tuple]:
    """The layout of one sample (dims 1..) when each sample is one dense block, else None.

    Tensors of one shape with equal keys put element (i, j) at offset i * stride(0) + off(j) with
    the same off(j), so a kernel may walk them as [B, N] rows with per-tensor row strides.
    """
    sizes, strides = t.shape[1:], t.stride()[1:]
    if not _dense_dims(sizes, strides):
        return None
    return tuple((sz, st) for sz, st in zip(sizes, strides, strict=True) if sz != 1)


def flat_key(t: torch.Tensor) -> Optional[tuple]:
    """The element order of a dense tensor (strides of non-size-1 dims), else None."""
    if not is_dense(t):
        return None
    return tuple((sz, st) for sz, st in zip(t.shape, t.stride(), strict=True) if sz != 1)


def rows_workspace(out: torch.Tensor) -> torch.Tensor:
    """`out` when it can be written as [B, N] rows, else a contiguous buffer to copy from."""
    if sample_key(out) is not None:
        return out
    return torch.empty(out.shape, dtype=out.dtype, device=out.device)


def conform_rows(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`t` itself when its samples are laid out as `like`'s, else one copy in `like`'s layout."""
    if sample_key(t) == sample_key(like):
        return t
    return torch.empty_like(like, dtype=t.dtype).copy_(t)


def flat_workspace(out: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`out` when it is stored in the same order as the dense `like`, else a buffer like `like`."""
    if flat_key(out) == flat_key(like):
        return out
    return torch.empty_like(like, dtype=out.dtype)


def triton_opmath(dtype: torch.dtype):
    """The accumulation ("opmath") type as a Triton dtype: float64 for float64 tensors, float32
    otherwise (reference.opmath_dtype's choice)."""
    return tl.float64 if dtype == torch.float64 else tl.float32


def rows_of(t: torch.Tensor) -> tuple[int, int]:
    b = t.shape[0]
    return b, (t.numel() // b if b else 0)


# --- multi-tensor ops (clip_, ema_) ------------------------------------------------------------

TL_DTYPES = {
    torch.float32: tl.float32,
    torch.float64: tl.float64,
    torch.float16: tl.float16,
    torch.bfloat16: tl.bfloat16,
}
TABLE_CACHE_SIZE = 16


def traced(tensors: Iterable[torch.Tensor]) -> bool:
    """True for fake or functional tensors (tracing), which have no addresses to tabulate."""
    from torch._subclasses.fake_tensor import is_fake

    return any(is_fake(t) or torch._is_functional_tensor(t) for t in tensors)


def chunk_table(
    cache: OrderedDict,
    key: tuple,
    addresses: list[list[int]],
    sizes: list[int],
    block: int,
    device: torch.device,
) -> tuple[torch.Tensor, int]:
    """(device int64 table, chunk count) of a multi-tensor launch: the address columns (one per
    tensor role), the sizes, then each `block`-element chunk's (tensor, start). Cached in `cache`
    (least recently used out) under `key`, which must hold everything the table depends on, so a
    hit is always valid; a miss reaches the GPU by a pinned, non-blocking copy (no host wait)."""
    hit = cache.get(key)
    if hit is not None:
        cache.move_to_end(key)
        return hit
    chunk_tensor: list[int] = []
    chunk_start: list[int] = []
    for i, n in enumerate(sizes):
        for start in range(0, n, block):
            chunk_tensor.append(i)
            chunk_start.append(start)
    columns = [a for column in addresses for a in column]
    host = torch.tensor(columns + sizes + chunk_tensor + chunk_start, dtype=torch.int64)
    if device.type == "cuda":
        table = host.pin_memory().to(device, non_blocking=True)
    else:
        table = host.to(device)
    cache[key] = hit = (table, len(chunk_tensor))
    if len(cache) > TABLE_CACHE_SIZE:
        cache.popitem(last=False)
    return hit
