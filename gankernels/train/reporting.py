"""What a run reports (rank 0): per-interval records in metrics.jsonl, the progress bar, the
sample and curve plots, summary.json and the final table.

Losses are held as device tensors until a log interval ends (`Logger.flush`: one host
synchronisation per interval, not per step), which is also where a NaN / Inf loss is found.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Optional

import torch

from .data import DataSet
from .distributed import Dist, any_rank
from .plots import plot_curves, plot_images, plot_points, read_metrics

METRICS_NAME = "metrics.jsonl"
SUMMARY_NAME = "summary.json"


def scalar(x: Any) -> Any:
    """A logged value as a detached tensor (a Python number becomes a CPU tensor)."""
    return x.detach() if isinstance(x, torch.Tensor) else torch.tensor(float(x))


class Logger:
    """Per-step losses and logs, held as device tensors until an interval ends (one host sync),
    then averaged into a metrics.jsonl record and the progress bar."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.critic: list[torch.Tensor] = []
        self.generator: list[torch.Tensor] = []
        self.extra: dict[str, list[torch.Tensor]] = {}

    def add(
        self,
        step: int,
        loss_c: torch.Tensor,
        loss_g: torch.Tensor,
        logs: dict[str, list[torch.Tensor]],
    ) -> None:
        self.steps.append(step)
        self.critic.append(loss_c.detach().float().reshape(()))
        self.generator.append(loss_g.detach().float().reshape(()))
        for key, values in logs.items():
            if values:
                self.extra.setdefault(key, []).append(
                    torch.stack([v.detach().float().reshape(()) for v in values]).mean()
                )

    def flush(self, d: Dist) -> tuple[Optional[dict[str, Any]], Optional[str]]:
        """(the averaged record, or None if empty; a divergence message, or None)."""
        if not self.steps:
            return None, None
        lc, lg = torch.stack(self.critic), torch.stack(self.generator)
        bad = ~(torch.isfinite(lc) & torch.isfinite(lg))
        first_bad = torch.where(bad.any(), bad.int().argmax(), -1).reshape(1).to(torch.int64)
        # Every rank stops together: a NaN on one rank reaches all parameters through DDP.
        any_bad = any_rank(first_bad >= 0, d)
        message = None
        if any_bad:
            i = int(first_bad.item())
            if i >= 0:
                which = "critic" if not torch.isfinite(lc[i]) else "generator"
                value = float(lc[i] if which == "critic" else lg[i])
                message = f"the {which} loss became {value} at generator step {self.steps[i]}"
            else:
                message = "a loss became NaN or Inf on another rank"
        record = {
            "kind": "train",
            "step": self.steps[-1],
            "loss_critic": float(lc.mean()),
            "loss_generator": float(lg.mean()),
        }
        for key, values in self.extra.items():
            record[key] = float(torch.stack(values).mean())
        self.__init__()
        return record, message


# --- metrics.jsonl ------------------------------------------------------------------------------


def append_record(path: str, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def trim_metrics(path: str, step: int) -> None:
    """Drop records past the checkpoint's `step`: a run killed after its last checkpoint
    logged steps that the resumed run repeats."""
    records = read_metrics(path)
    keep = [r for r in records if step > 0 and r.get("step", 0) <= step]
    if len(keep) != len(records):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            for r in keep:
                f.write(json.dumps(r) + "\n")
        os.replace(tmp, path)


# --- progress and plots -------------------------------------------------------------------------


def progress_bar(total: int, initial: int, desc: str):
    """A tqdm bar on stderr counting generator steps."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="step",
        dynamic_ncols=True,
        file=sys.stderr,
    )


def postfix(record: dict[str, Any]) -> dict[str, str]:
    """The progress bar's losses (and gradient norm) from a train record."""
    out = {"D": f"{record['loss_critic']:.3g}", "G": f"{record['loss_generator']:.3g}"}
    if "grad_norm" in record:
        out["|grad|"] = f"{record['grad_norm']:.3g}"
    return out


def wrap_title(title: str, width: int = 70) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(title, width))


def plot_samples(
    out: str, samples: torch.Tensor, reference: torch.Tensor, dataset: DataSet, title: str
) -> None:
    """out/samples.png: 2-D points over the reference sample and the modes, or an image grid
    (nothing for other data)."""
    if dataset.kind == "points" and dataset.sample_shape == (2,):
        plot_points(
            os.path.join(out, "samples.png"),
            samples[:2500],
            reference[:2500],
            dataset.centres,
            wrap_title(title),
        )
    elif dataset.kind == "images":
        plot_images(os.path.join(out, "samples.png"), samples, wrap_title(title))


def plot_history(out: str, metrics_path: str, title: str) -> None:
    """out/curves.png from the run's metrics.jsonl."""
    plot_curves(os.path.join(out, "curves.png"), read_metrics(metrics_path), title)


# --- the summary --------------------------------------------------------------------------------


def write_summary(out: str, summary: dict[str, Any], verbose: bool) -> None:
    """out/summary.json, and the final table on stdout when `verbose`."""
    with open(os.path.join(out, SUMMARY_NAME), "w") as f:
        json.dump(summary, f, indent=2)
    if verbose:
        print(format_summary(summary))


def format_summary(summary: dict[str, Any]) -> str:
    """The final table: run settings, then the metrics."""
    rows = [
        ("run", summary["out"]),
        ("variant", summary["variant"]),
        ("data", summary["data"]),
        (
            "steps",
            f"{summary['steps']} generator / {summary['critic_steps']} critic "
            f"(n_critic {summary['n_critic']}, batch {summary['batch_size']} x "
            f"{summary['processes']} process(es))",
        ),
        ("optimizer", summary["optimizer"]),
        ("device / impl", f"{summary['device']} / {summary['impl']}"),
        ("train time", f"{summary['seconds']:.1f} s"),
    ]
    if summary["penalty_weight"] is not None:
        rows.insert(5, ("penalty weight", f"{summary['penalty_weight']:g}"))
    if summary["clip_value"] is not None:
        rows.insert(5, ("clip value", f"{summary['clip_value']:g}"))
    m = summary["metrics"]
    if "modes" in m:
        rows.append(("modes captured", f"{m['modes']} / {m['n_modes']}"))
        rows.append(("high quality", f"{m['hq']:.1f} %"))
    labels = {
        "mmd2": "MMD^2",
        "swd": "sliced W1",
        "precision": "precision (k=3)",
        "recall": "recall (k=3)",
    }
    for key, label in labels.items():
        if key in m:
            rows.append((label, f"{m[key]:.4g}"))
    if "classes" in m:
        rows.append(("digit classes", f"{m['classes']} / 10"))
        rows.append(("label KL", f"{m['label_kl']:.4f}"))
    if m.get("finite") == 0.0:
        rows.append(("samples", "NaN / Inf: no metrics"))
    width = max(len(k) for k, _ in rows)
    line = "-" * (width + 2 + max(len(str(v)) for _, v in rows))
    body = "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
    return f"{line}\n{body}\n{line}"
