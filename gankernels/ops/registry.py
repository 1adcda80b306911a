"""Fake kernels and autograd for each op, attached to every backend's op of that name.

The compiled ops (`torch.ops.gankernels.<name>`, schemas in csrc/ops.cpp) get them here when
`_C` loaded; the Triton ops (`torch.ops.gankernels.<name>_triton`) get the same autograd from
`attach_autograd` when gankernels.triton is first used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from .._extension import STATUS


@dataclass(frozen=True)
class OpSpec:
    fake: Callable
    fake_backward: Optional[Callable] = None
    make_backward: Optional[Callable] = None  # backward_op -> autograd backward function
    setup_context: Optional[Callable] = None


SPECS: dict[str, OpSpec] = {}


def attach_autograd(name: str, forward_qualname: str, backward_op: Callable) -> None:
    """Registers op `name`'s autograd on `forward_qualname`, with `backward_op` as its fused
    first-order backward."""
    spec = SPECS[name]
    if spec.make_backward is not None:
        torch.library.register_autograd(
            forward_qualname, spec.make_backward(backward_op), setup_context=spec.setup_context
        )


def register_op(name: str, **spec_fields) -> None:
    spec = SPECS[name] = OpSpec(**spec_fields)
    if not STATUS.loaded:
        return
    torch.library.register_fake(f"gankernels::{name}")(spec.fake)
    if spec.fake_backward is not None:
        torch.library.register_fake(f"gankernels::{name}_backward")(spec.fake_backward)
        attach_autograd(
            name, f"gankernels::{name}", getattr(torch.ops.gankernels, f"{name}_backward")
        )


def backend_op(name: str, backend: str) -> Callable:
    """The op that runs `name` on a backend: the compiled op for "cpu" and "cuda", else Triton's."""
    if backend in ("cpu", "cuda"):
        return getattr(torch.ops.gankernels, name)
    if backend == "triton":
        from .. import triton as triton_backend

        return triton_backend.op(name)
    raise ValueError(f"no op for backend {backend!r}")
