"""PNG plots of a run (matplotlib, Agg backend: no display needed).

- samples over the real data (2-D sets), or an image grid (image sets);
- loss and gradient-norm curves from DIR/metrics.jsonl.
"""

from __future__ import annotations

import json
import math
import os
from typing import Optional

import torch


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_points(
    path: str,
    fake: torch.Tensor,
    real: torch.Tensor,
    centres: Optional[torch.Tensor] = None,
    title: str = "",
) -> None:
    """Generated points (orange) over real points (blue), and mode centres (x) when known."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    r, f = real.detach().cpu().float(), fake.detach().cpu().float()
    ax.scatter(r[:, 0], r[:, 1], s=2, alpha=0.3, c="tab:blue", label="real")
    ax.scatter(f[:, 0], f[:, 1], s=2, alpha=0.5, c="tab:orange", label="generated")
    if centres is not None:
        c = centres.cpu()
        ax.scatter(c[:, 0], c[:, 1], s=30, marker="x", c="black", label="modes")
    lim = float(torch.cat([r.abs().max(0).values, torch.ones(2)]).max()) * 1.2
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_images(path: str, images: torch.Tensor, title: str = "", n: int = 64) -> None:
    """A square grid of the first n images [N, C, H, W] (1 or 3 channels shown, min-max scaled)."""
    plt = _pyplot()
    x = images[:n].detach().cpu().float()
    lo, hi = float(x.min()), float(x.max())
    x = (x - lo) / (hi - lo if hi > lo else 1.0)
    cols = int(math.ceil(math.sqrt(x.shape[0])))
    rows = int(math.ceil(x.shape[0] / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.8, rows * 0.8 + 0.4), dpi=100)
    for i, ax in enumerate(getattr(axes, "flat", [axes])):
        ax.axis("off")
        if i < x.shape[0]:
            img = x[i]
            if img.shape[0] == 3:
                ax.imshow(img.permute(1, 2, 0).numpy())
            else:
                ax.imshow(img[0].numpy(), cmap="gray")
    fig.suptitle(title, fontsize=9)
    _save(fig, path)
    plt.close(fig)


def read_metrics(path: str) -> list[dict]:
    """The records of a metrics.jsonl file (one JSON object per line)."""
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_curves(path: str, records: list[dict], title: str = "") -> bool:
    """Critic and generator losses, and the mean gradient norm when logged, against the step.

    Returns False (and writes nothing) when there are no training records yet."""
    train = [r for r in records if r.get("kind") == "train"]
    if not train:
        return False
    plt = _pyplot()
    has_norm = any("grad_norm" in r for r in train)
    fig, axes = plt.subplots(1, 2 if has_norm else 1, figsize=(10 if has_norm else 5, 3.5))
    axes = list(getattr(axes, "flat", [axes]))
    steps = [r["step"] for r in train]
    axes[0].plot(steps, [r.get("loss_critic") for r in train], label="critic loss")
    axes[0].plot(steps, [r.get("loss_generator") for r in train], label="generator loss")
    axes[0].set_xlabel("generator step")
    axes[0].legend(fontsize=8)
    if has_norm:
        pts = [(r["step"], r["grad_norm"]) for r in train if "grad_norm" in r]
        axes[1].plot([p[0] for p in pts], [p[1] for p in pts], c="tab:green")
        axes[1].axhline(1.0, ls="--", c="gray", lw=0.8)
        axes[1].set_xlabel("generator step")
        axes[1].set_ylabel("mean ||grad_x D||")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return True


def _save(fig, path: str) -> None:
    # Written under a temporary name and renamed, so a viewer never sees half a PNG.
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp)
    os.replace(tmp, path)
