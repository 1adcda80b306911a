"""Train every built-in GAN variant on ring8 and grid25 with one seed and one step budget, and
write a markdown table (modes captured, high-quality %, MMD^2, seconds) for the README.

    python scripts/variant_table.py                         # every variant, the trainer's defaults
    python scripts/variant_table.py --variants wgan-gp nsgan --steps 50 --output table.md

Each run is an ordinary `gankernels train` run in OUT_DIR/VARIANT-DATA (checkpoint, metrics,
plots). A run that diverges (NaN / Inf loss) is listed as such, not dropped. Seconds are the
training time of the run (evaluation and plots excluded), so they depend on the machine: the
table's header records the device, torch version and date.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import sys
from typing import Any, Optional, Sequence

import torch

from gankernels import variants
from gankernels.train import TrainConfig, TrainingDiverged, train

DATA = ("ring8", "grid25")


def run_one(variant: str, data: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train one (variant, data) pair; the row's values, or the reason it failed."""
    out = os.path.join(args.out_dir, f"{variant}-{data}")
    if os.path.isdir(out):
        shutil.rmtree(out)  # a table is one fresh run per cell, never a resumed one
    cfg = TrainConfig(
        variant=variant,
        data=data,
        out=out,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
        impl=args.impl,
        hidden=args.hidden,
        progress=not args.quiet,
        verbose=False,
        plots=not args.no_plots,
    )
    try:
        result = train(cfg)
    except TrainingDiverged as exc:
        return {"status": "diverged", "note": str(exc).split(";")[0]}
    m = result.metrics
    return {
        "status": "ok",
        "modes": f"{m['modes']}/{m['n_modes']}",
        "hq": f"{m['hq']:.1f}",
        "mmd2": f"{m['mmd2']:.2e}",
        "seconds": f"{result.seconds:.1f}",
        "steps": result.step,
    }


def format_table(rows: list[tuple[str, str, dict[str, Any]]], header: str) -> str:
    lines = [
        header,
        "",
        "| variant | data | modes | HQ % | MMD² | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for variant, data, r in rows:
        if r["status"] == "ok":
            lines.append(
                f"| {variant} | {data} | {r['modes']} | {r['hq']} | {r['mmd2']} | {r['seconds']} |"
            )
        else:
            lines.append(f"| {variant} | {data} | {r['status']}: {r['note']} | | | |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", nargs="*", help="default: every available variant")
    p.add_argument("--data", nargs="*", default=list(DATA), choices=DATA)
    p.add_argument("--steps", type=int, help="generator steps per run (default: the preset)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--hidden", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--impl", default="auto")
    p.add_argument("--out-dir", default=os.path.join("runs", "variant-table"))
    p.add_argument("--output", default=None, help="markdown file (default OUT_DIR/table.md)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-plots", action="store_true")
    args = p.parse_args(argv)

    names = args.variants or variants.available()
    unknown = [n for n in names if n not in variants.available()]
    if unknown:
        print(
            f"error: unknown variants {unknown}; available: {variants.available()}", file=sys.stderr
        )
        return 2
    rows = []
    for name in names:
        for data in args.data:
            row = run_one(name, data, args)
            rows.append((name, data, row))
            print(f"{name:>24} {data:>7}: {row}", flush=True)
    device = (
        torch.cuda.get_device_name()
        if torch.cuda.is_available() and args.device != "cpu"
        else f"CPU ({platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads)"
    )
    steps = args.steps if args.steps else "preset"
    header = (
        f"Seed {args.seed}, {steps} generator steps per run, {device}, torch "
        f"{torch.__version__}, {datetime.date.today().isoformat()}; metrics of docs/math.md "
        f"section 7 on 2,500 samples."
    )
    text = format_table(rows, header)
    output = args.output or os.path.join(args.out_dir, "table.md")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as f:
        f.write(text)
    print(text)
    print(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
