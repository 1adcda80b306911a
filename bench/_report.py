"""The one results table of the suite, from a live pytest-benchmark session or a saved
`--benchmark-json` file: op, size, dtype, implementation, median, speed-up over the eager
baseline of the same group, and the copy floor's time as a percentage of the result's time.

Every benchmark carries its coordinates in `extra_info` (op, size, dtype, impl, role), so the
table is rebuilt identically from the JSON by bench/plot.py and bench/summarize.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

# Display order of implementations inside a group: baselines first, the floor last.
IMPL_ORDER = (
    "eager",
    "loop",
    "textbook",
    "foreach",
    "eager+count",
    "compile",
    "cpu",
    "cuda",
    "triton",
    "gankernels-cpu",
    "gankernels-cuda",
    "gankernels-triton",
    "copy",
)
DTYPE_ORDER = ("float32", "bfloat16", "float16", "float64")
OP_ORDER = (
    "interpolation",
    "norm_penalty",
    "loss:minimax",
    "loss:wasserstein",
    "loss:hinge",
    "loss:kl",
    "clip_",
    "ema_",
    "wgan-gp step",
    "wgan clip step",
)


@dataclass
class Row:
    op: str
    size: str
    dtype: str
    impl: str
    role: str  # "baseline" (eager), "floor" (the copy) or "" (a contender)
    median: float  # seconds per call
    saved_bytes: Optional[int] = None
    peak_bytes: Optional[int] = None
    speedup: Optional[float] = None  # baseline median / median
    floor_pct: Optional[float] = None  # 100 * copy-floor median / median

    @property
    def group(self) -> tuple[str, str, str]:
        return (self.op, self.size, self.dtype)


def _row(extra: dict[str, Any], median: float) -> Optional[Row]:
    if "op" not in extra:
        return None
    return Row(
        extra["op"],
        extra["size"],
        extra["dtype"],
        extra["impl"],
        extra.get("role", ""),
        median,
        extra.get("saved_bytes"),
        extra.get("peak_bytes"),
    )


def rows_from_session(benchmarks: Iterable[Any]) -> list[Row]:
    """Rows from pytest-benchmark's in-memory results (`config._benchmarksession.benchmarks`)."""
    rows = []
    for bench in benchmarks:
        if getattr(bench, "has_error", False) or not bench.stats:
            continue
        row = _row(bench.extra_info, bench.stats.median)
        if row is not None:
            rows.append(row)
    return finish(rows)


def rows_from_json(data: dict[str, Any]) -> list[Row]:
    """Rows from a saved `--benchmark-json` file."""
    rows = []
    for bench in data.get("benchmarks", []):
        row = _row(bench.get("extra_info", {}), bench["stats"]["median"])
        if row is not None:
            rows.append(row)
    return finish(rows)


def _order(seq: tuple[str, ...], name: str) -> int:
    return seq.index(name) if name in seq else len(seq)


def finish(rows: list[Row]) -> list[Row]:
    """Fills speed-up and floor percentage within each (op, size, dtype) group, and sorts."""
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    for members in groups.values():
        base = next((r for r in members if r.role == "baseline"), None)
        floor = next((r for r in members if r.role == "floor"), None)
        for r in members:
            if base is not None and r.median > 0:
                r.speedup = base.median / r.median
            if floor is not None and r.median > 0:
                r.floor_pct = 100.0 * floor.median / r.median
    return sorted(
        rows,
        key=lambda r: (
            _order(OP_ORDER, r.op),
            r.op,
            _size_key(r.size),
            r.size,
            _order(DTYPE_ORDER, r.dtype),
            r.dtype,
            _order(IMPL_ORDER, r.impl),
            r.impl,
        ),
    )


def _size_key(size: str) -> float:
    """Sizes sort by element count where the label is a shape, else keep their text order."""
    head = size.split(" ")[0].replace("B=", "")
    try:
        total = 1
        for part in head.split("x"):
            total *= int(part)
        return float(total)
    except ValueError:
        return float("inf")


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.1f} us"


def fmt_bytes(n: Optional[int], none: str = "-") -> str:
    if n is None:
        return none
    if n < 1024:
        return f"{n} B"
    if n < 1024**2:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024**2:.1f} MiB"


HEADERS = ("op", "size", "dtype", "impl", "median", "vs eager", "% floor", "saved", "peak")
NOTES = (
    "vs eager: the group's eager baseline median / this median (>1 = faster). "
    "% floor: the time of a copy reading and writing the same bytes / this time "
    "(100% = memory-bandwidth bound). saved: bytes autograd keeps for the backward beyond "
    "inputs and parameters; peak: the most memory held at once above the start "
    "(torch.cuda.max_memory_allocated on a GPU; on the CPU, mmd2 only, from the profiler's "
    "allocation events)."
)


def cells(row: Row, peak_missing: str = "-") -> tuple[str, ...]:
    return (
        row.op,
        row.size,
        row.dtype,
        row.impl,
        fmt_time(row.median),
        f"{row.speedup:.2f}x" if row.speedup is not None else "-",
        f"{row.floor_pct:.0f}%" if row.floor_pct is not None and row.role != "floor" else "-",
        fmt_bytes(row.saved_bytes),
        fmt_bytes(row.peak_bytes, peak_missing),
    )


def text_table(rows: list[Row], peak_missing: str = "-") -> str:
    """A plain-text table, a blank line between (op, size) blocks."""
    body = [cells(r, peak_missing) for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in body]) for i, h in enumerate(HEADERS)]
    right = {4, 5, 6, 7, 8}

    def line(values: tuple[str, ...]) -> str:
        return "  ".join(
            v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))
        ).rstrip()

    out = [line(HEADERS), line(tuple("-" * w for w in widths))]
    previous = None
    for r, c in zip(rows, body):
        if previous is not None and r.group != previous:
            out.append("")
        previous = r.group
        out.append(line(c))
    return "\n".join(out)


def markdown_table(rows: list[Row], peak_missing: str = "-") -> str:
    out = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for r in rows:
        out.append("| " + " | ".join(cells(r, peak_missing)) + " |")
    return "\n".join(out)


# --- the CPU targets of issue 9 ---------------------------------------------------------------


@dataclass
class Target:
    what: str
    goal: float  # required speed-up
    measured: Optional[float]
    against: str
    note: str = ""

    @property
    def met(self) -> Optional[bool]:
        return None if self.measured is None else self.measured >= self.goal

    def line(self) -> str:
        if self.measured is None:
            return f"- {self.what}: not measured in this run"
        verdict = "met" if self.met else f"MISSED by {(1 - self.measured / self.goal) * 100:.0f}%"
        return (
            f"- {self.what}: {self.measured:.2f}x {self.against}{self.note} "
            f"(target {self.goal:g}x) -- {verdict}"
        )


def _find(rows: list[Row], op: str, size: str, dtype: str, impl: str) -> Optional[Row]:
    return next(
        (r for r in rows if (r.op, r.size, r.dtype, r.impl) == (op, size, dtype, impl)), None
    )


def cpu_targets(rows: list[Row], fused: str = "cpu") -> list[Target]:
    """Issue 9's CPU targets, forward+backward against eager, float32, for the `fused` backend."""
    f32 = "float32"
    out = []
    for op, goal in (("interpolation", 1.8), ("norm_penalty", 2.0)):
        row = _find(rows, op, "256x3x64x64", f32, fused)
        out.append(
            Target(f"{op} fwd+bwd at 256x3x64x64", goal, row.speedup if row else None, "eager")
        )
    for kind in ("minimax", "wasserstein", "hinge", "kl"):
        row = _find(rows, f"loss:{kind}", "B=256", f32, fused)
        out.append(
            Target(f"loss {kind} fwd+bwd at B=256", 5.0, row.speedup if row else None, "eager")
        )
    clip_sizes = sorted({r.size for r in rows if r.op == "clip_" and r.dtype == f32})
    for size in clip_sizes:
        mine = _find(rows, "clip_", size, f32, fused)
        rivals = [_find(rows, "clip_", size, f32, i) for i in ("loop", "foreach")]
        rivals = [r for r in rivals if r is not None]
        best = min((r.median for r in rivals), default=None)
        measured = best / mine.median if mine is not None and best is not None else None
        goal = 3.0 if size.startswith("small100") else 1.0
        loop = _find(rows, "clip_", size, f32, "loop")
        note = (
            f"; {loop.median / mine.median:.2f}x the loop"
            if loop is not None and mine is not None
            else ""
        )
        out.append(
            Target(f"clip_ on {size}", goal, measured, "the faster of loop and foreach", note)
        )
    ema_sizes = sorted({r.size for r in rows if r.op == "ema_" and r.dtype == f32})
    for size in ema_sizes:
        mine = _find(rows, "ema_", size, f32, fused)
        foreach = _find(rows, "ema_", size, f32, "foreach")
        measured = foreach.median / mine.median if mine is not None and foreach else None
        # On the GPU 1.5x foreach; on the CPU never slower than it.
        goal = 1.5 if fused in ("cuda", "triton") else 1.0
        out.append(Target(f"ema_ on {size}", goal, measured, "torch._foreach_lerp_"))
    # mmd2: 2x the eager cdist + exp form at B >= 1024 (the CPU goal; measured, not set, on a GPU).
    for size in sorted({r.size for r in rows if r.op == "mmd2" and r.dtype == f32}):
        batch = int(size.split(",")[0].removeprefix("B="))
        row = _find(rows, "mmd2", size, f32, fused)
        if batch >= 1024 and fused == "cpu":
            out.append(
                Target(f"mmd2 fwd+bwd at {size}", 2.0, row.speedup if row else None, "eager")
            )
    for size in sorted({r.size for r in rows if r.op == "wgan-gp step" and r.dtype == f32}):
        row = _find(rows, "wgan-gp step", size, f32, f"gankernels-{fused}")
        # "faster than textbook" is any speed-up above 1.
        out.append(
            Target(
                f"WGAN-GP critic step, {size}", 1.0, row.speedup if row else None, "textbook eager"
            )
        )
    return out
