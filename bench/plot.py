"""Turns a saved `pytest bench/ --benchmark-json RESULTS.json` into a PNG chart.

    python -m bench.plot RESULTS.json [-o CHART.png]

One panel per op: for each (size, dtype) group, a bar per implementation giving its speed-up
over the group's eager baseline (log scale; the copy floor's bar is the bandwidth ceiling).
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


def panel_of(op: str) -> str:
    """Losses share one panel, and so do the critic steps."""
    if op.startswith("loss:"):
        return "critic losses (fwd+bwd)"
    if op.endswith("step"):
        return "whole critic steps"
    if op in ("clip_", "ema_"):
        return f"{op} (in place, whole parameter list)"
    return f"{op} (fwd+bwd)"


def tick(op: str, size: str, dtype: str, panel: str) -> str:
    in_place = op in ("clip_", "ema_")
    head = op.replace("loss:", "") + "\n" if panel != f"{op} (fwd+bwd)" and not in_place else ""
    return f"{head}{size}\n{dtype}"


def plot(rows: list[_report.Row], out: str, title: str) -> None:
    """Writes the chart of `rows` (speed-up over eager per group and implementation) to `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    timed = [r for r in rows if r.speedup is not None]
    panels = list(dict.fromkeys(panel_of(r.op) for r in timed))
    if not panels:
        raise ValueError("no benchmark with a speed-up over an eager baseline in the results")
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 2.9 * len(panels)), squeeze=False)
    impls = list(dict.fromkeys(r.impl for r in rows))
    colours = {impl: plt.cm.tab10(i % 10) for i, impl in enumerate(impls)}
    for ax, panel in zip(axes[:, 0], panels):
        mine = [r for r in timed if panel_of(r.op) == panel]
        groups = list(dict.fromkeys(r.group for r in mine))
        members = list(dict.fromkeys(r.impl for r in mine))
        width = 0.8 / max(len(members), 1)
        for j, impl in enumerate(members):
            xs, ys = [], []
            for i, group in enumerate(groups):
                row = next((r for r in mine if r.group == group and r.impl == impl), None)
                if row is not None:
                    xs.append(i - 0.4 + (j + 0.5) * width)
                    ys.append(row.speedup)
            ax.bar(xs, ys, width, label=impl, color=colours[impl])
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        # Bars grow from below the smallest value, so the baseline's bar of 1.0 is visible too.
        low = min(r.speedup for r in mine)
        ax.set_ylim(bottom=min(0.5, low / 2))
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([tick(op, size, dtype, panel) for op, size, dtype in groups], fontsize=7)
        ax.set_ylabel("speed-up vs eager")
        ax.set_title(panel, fontsize=9, loc="left")
        ax.legend(fontsize=7, ncol=min(len(members), 7), loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(out, dpi=110)
    plt.close(fig)


def title_of(data: dict) -> str:
    info = data.get("machine_info", {}).get("gankernels", {})
    device = info.get("gpu") or f"{info.get('cpu_model', '?')}, {info.get('cpu_cores', '?')} cores"
    return (
        f"gankernels fwd+bwd speed-up over eager PyTorch - {device} - "
        f"torch {info.get('torch', '?')} - {info.get('date', data.get('datetime', ''))}"
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="a file written by pytest bench/ --benchmark-json")
    parser.add_argument("-o", "--output", help="PNG path (default: the JSON path with .png)")
    args = parser.parse_args(argv)
    with open(args.json) as f:
        data = json.load(f)
    rows = _report.rows_from_json(data)
    out = args.output or os.path.splitext(args.json)[0] + ".png"
    plot(rows, out, title_of(data))
    print(f"wrote {out} ({len(rows)} results)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
