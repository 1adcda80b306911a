"""Turns a saved `pytest bench/ --benchmark-json RESULTS.json` into a markdown summary: the
device, date and versions, the one results table, and (on a CPU) issue 9's targets, each
met or missed by how much.

    python -m bench.summarize RESULTS.json [-o SUMMARY.md] [--readme]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

if __package__ in (None, ""):  # run as a script: make `bench` importable from the repo root
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import _report  # noqa: E402


def _load(value: Optional[float]) -> str:
    return "?" if value is None else f"{value:.1f}"


def busy_warning(info: dict) -> list[str]:
    """A warning when other processes shared the CPU during the run: the load above what the
    suite's own threads account for means the medians are not this machine's speed."""
    cores = info.get("cpu_cores") or 1
    loads = [x for x in (info.get("load_avg_start"), info.get("load_avg_end")) if x is not None]
    if info.get("device", "cpu") != "cpu" or not loads:
        return []
    start = info.get("load_avg_start") or 0.0
    if start <= 0.5 and max(loads) <= cores + 0.5:
        return []
    return [
        f"> **Warning: measured on a busy machine** (1-minute load "
        f"{', '.join(f'{x:.1f}' for x in loads)}"
        f" on {cores} cores): other processes shared the CPU, so these medians and ratios are "
        f"not reliable. Rerun on a quiet machine: `pytest bench/ --benchmark-json "
        f"bench/results/cpu.json`, then bench/summarize.py and bench/plot.py.",
        "",
    ]


def summary(data: dict, json_name: str = "") -> str:
    """The markdown summary of one saved run."""
    info = data.get("machine_info", {}).get("gankernels", {})
    rows = _report.rows_from_json(data)
    on_cpu = info.get("device", "cpu") == "cpu"
    fused = info.get("fused_backends") or []
    lines = [
        f"# gankernels benchmarks on {'the CPU' if on_cpu else info.get('gpu', 'a GPU')}",
        "",
        *busy_warning(info),
        f"- device: {info.get('gpu') or info.get('cpu_model', '?')}"
        + (
            f" ({info.get('cpu_cores', '?')} cores, torch threads {info.get('torch_threads', '?')})"
            if on_cpu
            else ""
        ),
        f"- date: {info.get('date', data.get('datetime', '?'))}; 1-minute load average "
        f"{_load(info.get('load_avg_start'))} at the start, {_load(info.get('load_avg_end'))} "
        f"at the end",
        f"- torch {info.get('torch', '?')} (CUDA {info.get('cuda')}), gankernels "
        f"{info.get('gankernels', '?')}, fused backends measured: {', '.join(fused) or 'none'}",
        f"- size set: {info.get('size_set', '?')}; command: `pytest bench/ --benchmark-json "
        f"{json_name or 'RESULTS.json'}`",
        "",
        "Forward+backward per call, median. " + _report.NOTES,
        "",
        _report.markdown_table(rows, "needs a GPU" if on_cpu else "-"),
    ]
    if on_cpu and fused:
        lines += ["", f"## Issue 9 CPU targets ({fused[0]} kernels, float32)", ""]
        lines += [t.line() for t in _report.cpu_targets(rows, fused[0])]
    return "\n".join(lines) + "\n"


def readme(data: dict, results_dir: str = "bench/results") -> str:
    """The short form for the README: one line per group (eager median, then the speed-up of
    torch.compile and of each fused backend), the targets, and where the full table is."""
    info = data.get("machine_info", {}).get("gankernels", {})
    rows = _report.rows_from_json(data)
    on_cpu = info.get("device", "cpu") == "cpu"
    fused = info.get("fused_backends") or []
    # A critic step on backend b ("gankernels-b") shares the column of the fused op on b.
    column = {f"gankernels-{b}": b for b in fused}
    contenders = ["compile", "foreach", *fused]
    present = [c for c in contenders if any(column.get(r.impl, r.impl) == c for r in rows)]
    titles = {
        "compile": "torch.compile",
        "foreach": "foreach pair",
        **{b: f"gankernels {b}" for b in fused},
    }
    where = info.get("gpu") or (f"{info.get('cpu_model', '?')}, {info.get('cpu_cores', '?')} cores")
    lines = [
        *busy_warning(info),
        f"Measured with `pytest bench/` on {where}, torch {info.get('torch', '?')}, "
        f"{info.get('date', '?')}. Speed-up of forward+backward over eager PyTorch (the "
        f"reference in gankernels/reference.py; for clip_ the per-parameter `p.clamp_` loop; "
        f"for critic steps the textbook eager step); in brackets the copy floor's time as a "
        f"percentage of that implementation's time (100% = memory-bandwidth bound).",
        "",
        "| op | size | dtype | eager median | " + " | ".join(titles[c] for c in present) + " |",
        "|---|---|---|---|" + "---|" * len(present),
    ]
    groups: dict[tuple[str, str, str], list[_report.Row]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    for (op, size, dtype), members in groups.items():
        base = next((r for r in members if r.role == "baseline"), None)
        if base is None:
            continue
        cells = []
        for impl in present:
            row = next((r for r in members if column.get(r.impl, r.impl) == impl), None)
            if row is None or row.speedup is None:
                cells.append("-")
                continue
            floor = f" ({row.floor_pct:.0f}%)" if row.floor_pct is not None else ""
            cells.append(f"{row.speedup:.2f}x{floor}")
        lines.append(
            f"| {op} | {size} | {dtype} | {_report.fmt_time(base.median)} | "
            + " | ".join(cells)
            + " |"
        )
    if on_cpu and fused:
        lines += ["", f"Issue 9 CPU targets ({fused[0]} kernels, float32):", ""]
        lines += [t.line() for t in _report.cpu_targets(rows, fused[0])]
    lines += ["", f"Full table, memory columns and raw JSON: `{results_dir}/`."]
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="a file written by pytest bench/ --benchmark-json")
    parser.add_argument("-o", "--output", help="markdown path (default: print it)")
    parser.add_argument(
        "--readme",
        action="store_true",
        help="the short form pasted into the README instead of the full table",
    )
    args = parser.parse_args(argv)
    with open(args.json) as f:
        data = json.load(f)
    text = readme(data) if args.readme else summary(data, os.path.basename(args.json))
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
