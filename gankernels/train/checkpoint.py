"""Atomic checkpoints that load with `torch.load(weights_only=True)`.

A checkpoint is written to a temporary file in the same directory, flushed to disk, then renamed
over the old one with os.replace (atomic on POSIX): a run killed mid-write leaves the previous
checkpoint intact. Only tensors and primitive containers are stored, so loading never unpickles
arbitrary objects. RNG states of numpy and Python's `random` are converted to tensors / lists.
"""

from __future__ import annotations

import os
import random
from typing import Any, Optional

import numpy as np
import torch

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT_VERSION = 1


def save_checkpoint(path: str, payload: dict[str, Any]) -> None:
    """Write `payload` to `path` atomically (temporary file + fsync + os.replace)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # A failed or interrupted write must not leave a stray temporary file behind; the old
        # checkpoint at `path` has not been touched.
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def load_checkpoint(path: str, map_location: Any = "cpu") -> dict[str, Any]:
    """The checkpoint at `path` (or DIR/checkpoint.pt when `path` is a directory)."""
    if os.path.isdir(path):
        path = os.path.join(path, CHECKPOINT_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint: no such file {path!r}")
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise ValueError(
            f"checkpoint: {path!r} is not a gankernels training checkpoint "
            f"(format {FORMAT_VERSION} expected)"
        )
    return payload


def capture_rng(generators: Optional[dict[str, torch.Generator]] = None) -> dict[str, Any]:
    """Every RNG state a run draws from: torch (CPU and CUDA), numpy, Python, and the named
    torch.Generator objects, as tensors and primitive containers."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(np_state[0]),
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "generators": {k: g.get_state() for k, g in (generators or {}).items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(
    state: dict[str, Any], generators: Optional[dict[str, torch.Generator]] = None
) -> None:
    """Put back the states captured by `capture_rng`."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(
        (
            n["name"],
            n["keys"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    for name, g in (generators or {}).items():
        if name in state["generators"]:
            g.set_state(state["generators"][name].cpu())
