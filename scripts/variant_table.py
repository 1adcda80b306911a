"""Train every built-in GAN variant on ring8, grid25 and digits with several seeds and the
trainer's defaults, and write markdown tables for the README (point data: modes captured and
high-quality %, minimum and median over the seeds, MMD^2, seconds; digits: classes, label KL,
precision and recall), with whether each row meets the goal below.

    python scripts/variant_table.py                         # every variant, seeds 0 1 2
    python scripts/variant_table.py --jobs 2                # two runs at a time, one thread each
    python scripts/variant_table.py --variants hinge --data ring8 --seeds 0 --check   # CI's

The goal (issue #18, per data set, on the worst seed): ring8 at least 7/8 modes with 80 % or
more high-quality samples, grid25 at least 20/25 with 70 % or more; digits 10/10 classes, a
label KL of 0.05 or less and precision and recall (k = 3) of 0.5 or more (docs/math.md section
7). `--check` exits 1 when a row misses it.

Each run is an ordinary `gankernels train` run in OUT_DIR/VARIANT-DATA-sSEED (checkpoint,
metrics, plots) on one thread. A run that diverges (NaN / Inf loss) counts as 0 modes and 0 %,
and the row says so. Seconds are the longest run's training time (evaluation and plots
excluded), so they depend on the machine: the table's header records it, the torch version and
the date.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import math
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
from typing import Any, Optional, Sequence

import torch

from gankernels import variants
from gankernels.train import TrainConfig, TrainingDiverged, train

POINTS = ("ring8", "grid25")
DATA = (*POINTS, "digits")
# (modes, high-quality %) a point-data row must reach on its worst seed.
GOALS = {"ring8": (7, 80.0), "grid25": (20, 70.0)}
# What a digits row must reach on its worst seed: all classes, label KL at most, precision and
# recall at least.
DIGITS_GOAL = {"classes": 10, "label_kl": 0.05, "precision": 0.5, "recall": 0.5}
# The metrics a run reports, with their types, per kind of data.
RUN_METRICS = {
    "points": {"modes": int, "n_modes": int, "hq": float, "mmd2": float},
    "digits": {"classes": int, "label_kl": float, "precision": float, "recall": float},
}
# What a diverged run counts as: the worst value of each metric a goal reads.
DIVERGED = {
    "modes": 0,
    "hq": 0.0,
    "classes": 0,
    "label_kl": math.inf,
    "precision": 0.0,
    "recall": 0.0,
}


def run_one(variant: str, data: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Train one (variant, data, seed) on one thread; the run's metrics, or why it failed."""
    torch.set_num_threads(1)
    out = os.path.join(args.out_dir, f"{variant}-{data}-s{seed}")
    if os.path.isdir(out):
        shutil.rmtree(out)  # a table is fresh runs, never resumed ones
    cfg = TrainConfig(
        variant=variant,
        data=data,
        out=out,
        steps=args.steps,
        seed=seed,
        device=args.device,
        impl=args.impl,
        progress=False,
        verbose=False,
        plots=not args.no_plots,
    )
    try:
        result = train(cfg)
    except TrainingDiverged as exc:
        return {"diverged": str(exc).split(";")[0], **DIVERGED, "seconds": None}
    kind = "digits" if data == "digits" else "points"
    run = {key: cast(result.metrics[key]) for key, cast in RUN_METRICS[kind].items()}
    return {**run, "seconds": float(result.seconds)}


def summarise(data: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Worst and median over the seeds, and whether the worst meets the goal of `data`."""
    row = _summarise_digits(runs) if data == "digits" else _summarise_points(data, runs)
    seconds = [r["seconds"] for r in runs if r["seconds"] is not None]
    row["seconds"] = max(seconds) if seconds else None
    row["diverged"] = sum("diverged" in r for r in runs)
    return row


def _worst_and_median(runs: list[dict[str, Any]], key: str, worst=min) -> tuple[Any, Any]:
    values = [r[key] for r in runs]
    return worst(values), statistics.median(values)


def _summarise_points(data: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    mmd2 = [r["mmd2"] for r in runs if "mmd2" in r]
    row = {
        "n_modes": {"ring8": 8, "grid25": 25}[data],
        "modes": _worst_and_median(runs, "modes"),
        "hq": _worst_and_median(runs, "hq"),
        "mmd2": statistics.median(mmd2) if mmd2 else None,
    }
    goal_modes, goal_hq = GOALS[data]
    row["met"] = row["modes"][0] >= goal_modes and row["hq"][0] >= goal_hq
    return row


def _summarise_digits(runs: list[dict[str, Any]]) -> dict[str, Any]:
    row = {key: _worst_and_median(runs, key) for key in ("classes", "precision", "recall")}
    row["label_kl"] = _worst_and_median(runs, "label_kl", worst=max)  # the worst KL is the largest
    goal = DIGITS_GOAL
    row["met"] = (
        row["classes"][0] >= goal["classes"]
        and row["label_kl"][0] <= goal["label_kl"]
        and row["precision"][0] >= goal["precision"]
        and row["recall"][0] >= goal["recall"]
    )
    return row


def _goal_cell(r: dict[str, Any]) -> str:
    goal = "met" if r["met"] else "-"
    return goal + (f" ({r['diverged']} diverged)" if r["diverged"] else "")


def format_digits_table(rows: list[tuple[str, str, dict[str, Any]]], header: str) -> str:
    lines = [
        header,
        "",
        "| variant | classes min / median | label KL max / median | precision min / median "
        "| recall min / median | seconds max | goal |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, _, r in rows:
        seconds = f"{r['seconds']:.0f}" if r["seconds"] is not None else "-"
        lines.append(
            f"| {variant} | {r['classes'][0]}/10 / {r['classes'][1]:g}/10 "
            f"| {r['label_kl'][0]:.3f} / {r['label_kl'][1]:.3f} "
            f"| {r['precision'][0]:.2f} / {r['precision'][1]:.2f} "
            f"| {r['recall'][0]:.2f} / {r['recall'][1]:.2f} | {seconds} | {_goal_cell(r)} |"
        )
    return "\n".join(lines) + "\n"


def format_table(rows: list[tuple[str, str, dict[str, Any]]], header: str) -> str:
    lines = [
        header,
        "",
        "| variant | data | modes min / median | HQ % min / median | MMD² median | seconds max "
        "| goal |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, data, r in rows:
        n = r["n_modes"]
        modes = f"{r['modes'][0]}/{n} / {r['modes'][1]:g}/{n}"
        hq = f"{r['hq'][0]:.1f} / {r['hq'][1]:.1f}"
        mmd2 = f"{r['mmd2']:.2e}" if r["mmd2"] is not None else "-"
        seconds = f"{r['seconds']:.0f}" if r["seconds"] is not None else "-"
        lines.append(
            f"| {variant} | {data} | {modes} | {hq} | {mmd2} | {seconds} | {_goal_cell(r)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--variants", nargs="*", help="default: every available variant except the systems"
    )
    p.add_argument("--data", nargs="*", default=list(DATA), choices=DATA)
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, help="generator steps per run (default: the preset)")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (one thread each)")
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    p.add_argument("--impl", default="auto")
    p.add_argument("--out-dir", default=os.path.join("runs", "variant-table"))
    p.add_argument("--output", default=None, help="markdown file (default OUT_DIR/table.md)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--check", action="store_true", help="exit 1 when a row misses the goal")
    args = p.parse_args(argv)

    # Systems (several networks, labelled or two-domain data) have their own quality goals and
    # script, scripts/system_quality.py.
    names = args.variants or [
        n for n in variants.available() if not isinstance(variants.get(n), variants.System)
    ]
    unknown = [n for n in names if n not in variants.available()]
    if unknown:
        print(
            f"error: unknown variants {unknown}; available: {variants.available()}", file=sys.stderr
        )
        return 2
    if not args.seeds or args.jobs < 1:
        print("error: --seeds needs at least one seed and --jobs at least 1", file=sys.stderr)
        return 2
    cells = [(name, data, seed) for name in names for data in args.data for seed in args.seeds]
    results: dict[tuple[str, str, int], dict[str, Any]] = {}
    # Fresh worker processes (spawn): each run starts from a clean interpreter and one thread.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
        futures = {pool.submit(run_one, *cell, args): cell for cell in cells}
        for future in concurrent.futures.as_completed(futures):
            cell = futures[future]
            results[cell] = future.result()
            print(f"{cell[0]:>24} {cell[1]:>7} seed {cell[2]}: {results[cell]}", flush=True)
    rows = []
    for name in names:
        for data in args.data:
            runs = [results[(name, data, seed)] for seed in args.seeds]
            rows.append((name, data, summarise(data, runs)))
    device = (
        torch.cuda.get_device_name()
        if torch.cuda.is_available() and args.device != "cpu"
        else f"CPU ({platform.processor() or platform.machine()}, one thread per run)"
    )
    steps = args.steps if args.steps else "the preset's"
    seeds = ", ".join(map(str, args.seeds))
    seeds = ("Seeds " if len(args.seeds) > 1 else "Seed ") + seeds
    run_line = (
        f"{seeds}, {steps} generator steps per run, {device}, torch {torch.__version__}, "
        f"{datetime.date.today().isoformat()}; metrics of docs/math.md section 7 on 2,500 samples."
    )
    tables = []
    points = [d for d in args.data if d in POINTS]
    if points:
        goals = "; ".join(f"{d} {GOALS[d][0]} modes and {GOALS[d][1]:g} % HQ" for d in points)
        header = f"{run_line} Goal: the minimum over the seeds reaches {goals}."
        tables.append(format_table([r for r in rows if r[1] in POINTS], header))
    if "digits" in args.data:
        g = DIGITS_GOAL
        header = (
            f"{run_line} Goal on digits, on the worst seed: {g['classes']}/10 classes, label KL "
            f"at most {g['label_kl']:g}, precision and recall (k = 3) at least {g['precision']:g}."
        )
        tables.append(format_digits_table([r for r in rows if r[1] == "digits"], header))
    text = "\n".join(tables)
    output = args.output or os.path.join(args.out_dir, "table.md")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as f:
        f.write(text)
    print(text)
    print(f"written to {output}")
    missed = [f"{v} on {d}" for v, d, r in rows if not r["met"]]
    if args.check and missed:
        print(f"goal missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
