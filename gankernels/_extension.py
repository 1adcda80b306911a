"""Loading of the compiled kernels, `gankernels._C`, and what they were built against.

`import gankernels` never fails because of the extension: when `_C` is missing, fails to load,
or was built against another torch or CUDA than the running one, a single warning says so and
how to rebuild, and every op falls back to Triton (on a GPU) or the reference.
"""

from __future__ import annotations

import importlib
import json
import os
import warnings
from dataclasses import dataclass
from typing import Optional

import torch

REBUILD = "pip install --no-build-isolation ."


@dataclass(frozen=True)
class ExtensionStatus:
    loaded: bool
    with_cuda: bool
    build_info: Optional[dict]
    error: Optional[str]


def _read_build_info() -> Optional[dict]:
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_build_info.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _mismatch(info: dict) -> Optional[str]:
    if info.get("torch") != torch.__version__:
        return f"built against torch {info.get('torch')}, running torch {torch.__version__}"
    if info.get("with_cuda") and info.get("cuda") != torch.version.cuda:
        return f"built against CUDA {info.get('cuda')}, running torch has CUDA {torch.version.cuda}"
    return None


def _source_tree() -> Optional[str]:
    """The repository root when this package is the source checkout itself (setup.py and csrc/
    beside it): Python started there imports it before any installed copy."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.isfile(os.path.join(root, "setup.py")) and os.path.isdir(os.path.join(root, "csrc")):
        return root
    return None


def _advice(info: Optional[dict]) -> str:
    """What to do about an unavailable _C. In a source checkout that was never built in place,
    rebuilding the installed package does not help: the checkout shadows it."""
    root = _source_tree()
    if root is not None and info is None:
        return (
            f"This is the source tree at {root}, which has no compiled _C: Python started in the "
            "repository root imports it instead of the installed package. Run from another "
            "directory (or with `python -P`), or build _C in place with "
            "`pip install --no-build-isolation -e .`."
        )
    return f"Rebuild with `{REBUILD}`."


def _load() -> ExtensionStatus:
    info = _read_build_info()
    error = _mismatch(info) if info is not None else None
    if error is None:
        try:
            importlib.import_module("gankernels._C")
        except (ImportError, OSError) as exc:
            error = f"gankernels._C failed to load ({type(exc).__name__}: {exc})"
        else:
            if info is None:
                error = "gankernels._C has no _build_info.json beside it"
    if error is not None:
        advice = _advice(info)
        warnings.warn(
            f"gankernels: compiled kernels unavailable: {error}. Falling back to Triton on GPU "
            f"and the PyTorch reference on CPU. {advice}",
            RuntimeWarning,
            stacklevel=3,
        )
        return ExtensionStatus(False, False, info, f"{error}. {advice}")
    return ExtensionStatus(True, bool(info.get("with_cuda")), info, None)


STATUS = _load()
