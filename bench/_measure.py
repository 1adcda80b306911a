"""How the suite measures: device synchronisation, the memory-bandwidth floor (a copy of the
same bytes), rounds and iterations per benchmark, the bytes autograd saves for the backward,
peak GPU memory, and the machine every saved result is recorded with."""

from __future__ import annotations

import math
import os
from typing import Callable, Optional, Sequence

import torch

import gankernels

from ._cases import bench_device, fused_backends, quick_mode, size_set

# The 1-minute load when the suite starts: other processes on the machine skew CPU timings.
LOAD_AT_START = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

# --- synchronisation and the copy floor -------------------------------------------------------


def synchronizer(device: str) -> Callable[[], None]:
    if device == "cuda":
        return torch.cuda.synchronize
    return lambda: None


def copy_floor(bytes_moved: int, device: str, sync: Callable[[], None]) -> Callable[[], None]:
    """dst.copy_(src) reading and writing bytes_moved bytes in all: the memory-bandwidth floor."""
    n = max(1, bytes_moved // 2 // 4)
    src = torch.randn(n, device=device)
    dst = torch.empty_like(src)

    def run() -> None:
        dst.copy_(src)
        sync()

    return run


# --- timing and memory ------------------------------------------------------------------------


def rounds_for(seconds_per_call: float, budget: float, quick: bool) -> tuple[int, int]:
    """(rounds, iterations): each round at least ~0.2 ms (timer resolution and call overhead
    amortised), as many rounds as fit in `budget` seconds, between 5 and 200; one in quick
    mode."""
    if quick:
        return 1, 1
    iterations = max(1, math.ceil(2e-4 / max(seconds_per_call, 1e-9)))
    rounds = int(budget / max(seconds_per_call * iterations, 1e-9))
    return min(max(rounds, 5), 200), iterations


def saved_bytes(fn: Callable[[], None], exclude: Sequence[torch.Tensor] = ()) -> int:
    """Bytes of the distinct storages autograd saves for the backward while `fn` runs, other
    than those of `exclude` (the inputs and parameters, which are alive anyway).

    Device independent (saved_tensors_hooks), so it is recorded on the CPU too; the storages
    are held until `fn` returns so that a freed address reused later is not merged with it.
    """
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    held: dict[int, torch.Tensor] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in skip and ptr not in held:
            held[ptr] = t
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    total = sum(t.untyped_storage().nbytes() for t in held.values())
    held.clear()
    return total


def peak_bytes(fn: Callable[[], None], device: str) -> Optional[int]:
    """torch.cuda.max_memory_allocated during `fn` above what was allocated before (GPU only;
    None on the CPU, which has no allocator statistics)."""
    if device != "cuda":
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def cpu_peak_bytes(fn: Callable[[], None]) -> Optional[int]:
    """The most CPU memory `fn` holds at once above what it starts with, from the profiler's
    allocation events (every allocation of torch's CPU allocator, those inside a fused op's C++
    included). None when this torch's profiler does not expose them."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    try:
        events = prof.profiler.kineto_results.events()
    except AttributeError:
        return None
    memory = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]")
    held = peak = 0
    for _, nbytes in memory:
        held += nbytes
        peak = max(peak, held)
    return peak


# --- the machine ------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else platform.processor()."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_summary(config=None) -> dict:
    """What every saved result is recorded with: device, CPU, cores, versions, size set."""
    import datetime

    from gankernels._extension import STATUS

    device = bench_device()
    return {
        "device": device,
        "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gankernels": gankernels.__version__,
        "extension_loaded": STATUS.loaded,
        "fused_backends": fused_backends(device),
        "size_set": size_set(device, quick_mode(config)),
        # Other processes on the machine skew the CPU numbers: the 1-minute load around the run
        # (the suite itself adds up to its thread count).
        "load_avg_start": LOAD_AT_START,
        "load_avg_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
