"""Which implementation runs an op: `impl="auto" | "cuda" | "triton" | "cpu" | "ref"`.

`auto` takes the compiled kernel for the tensor's device when it is built and loaded, else
Triton on a GPU, else the reference. An explicit choice that cannot run raises; nothing falls
back silently. `GANKERNELS_IMPL` sets the process-wide default for `impl=None`.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Optional

import torch

from .._extension import STATUS

IMPLS = ("auto", "cuda", "triton", "cpu", "ref")


def triton_importable() -> bool:
    return importlib.util.find_spec("triton") is not None


def triton_interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def available(device_type: str) -> list[str]:
    """The implementations that can run on a device type ("cpu" or "cuda"), best first."""
    found = []
    if device_type == "cuda" and STATUS.with_cuda:
        found.append("cuda")
    if device_type == "cpu" and STATUS.loaded:
        found.append("cpu")
    if triton_importable() and (device_type == "cuda" or triton_interpreted()):
        found.append("triton")
    found.append("ref")
    return found


def auto_choice(device_type: str) -> str:
    """What impl="auto" runs on a device type: the compiled kernel, else Triton on GPU, else ref."""
    if device_type == "cpu":
        return "cpu" if STATUS.loaded else "ref"
    if device_type == "cuda":
        if STATUS.with_cuda:
            return "cuda"
        return "triton" if triton_importable() else "ref"
    return "ref"


def resolve(impl: Optional[str], device: torch.device) -> str:
    """The implementation that will run for `impl` on `device`, or a clear error."""
    if impl is None:
        impl = os.environ.get("GANKERNELS_IMPL", "auto")
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {', '.join(map(repr, IMPLS))}, got {impl!r}")
    if impl == "auto":
        return auto_choice(device.type)
    if impl == "ref":
        return impl
    if impl == "cpu":
        if device.type != "cpu":
            raise ValueError(f"impl='cpu' runs on CPU tensors, got tensors on {device}")
        if not STATUS.loaded:
            raise RuntimeError(
                f"impl='cpu' needs gankernels._C, which is unavailable: {STATUS.error}"
            )
        return impl
    if impl == "cuda":
        if device.type != "cuda":
            raise ValueError(f"impl='cuda' runs on CUDA tensors, got tensors on {device}")
        if not STATUS.with_cuda:
            reason = STATUS.error or "gankernels._C was built without the CUDA kernels"
            raise RuntimeError(f"impl='cuda' needs the compiled CUDA kernels: {reason}")
        return impl
    # triton
    if not triton_importable():
        raise RuntimeError("impl='triton' needs the triton package, which is not installed")
    if device.type != "cuda" and not (device.type == "cpu" and triton_interpreted()):
        raise ValueError(
            f"impl='triton' runs on GPU tensors (or on CPU under TRITON_INTERPRET=1), "
            f"got tensors on {device}"
        )
    return impl
