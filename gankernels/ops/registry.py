"""Fake kernels and autograd for each op, attached to every backend's op of that name.

The compiled ops (`torch.ops.gankernels.<name>`, schemas in csrc/ops.cpp) take their autograd
from C++ (csrc/autograd/), which runs the fused `<name>_backward` for first-order gradients.
What is registered here for them: the fake kernels, and the autograd of each `<name>_backward`
op, so that a backward taken with create_graph=True is itself differentiable, through the
reference, to any order.

The Triton ops (`torch.ops.gankernels.<name>_triton`, defined in gankernels/triton/) get the same
from `attach_autograd`, with their forward's autograd in Python, when gankernels/ops/_triton.py is
imported on the first Triton call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from .. import reference
from .._extension import STATUS
from ._backend import resolve


@dataclass(frozen=True)
class OpSpec:
    fake: Callable
    fake_backward: Optional[Callable] = None
    # backward_op -> the forward's autograd backward function (for the Triton ops)
    make_backward: Optional[Callable] = None
    setup_context: Optional[Callable] = None
    # The backward op's outputs from its arguments, computed through the reference with
    # autograd, so that they can be differentiated again.
    reference_backward: Optional[Callable] = None


SPECS: dict[str, OpSpec] = {}


def attach_autograd(name: str, forward_qualname: str, backward_op: Callable) -> None:
    """Registers op `name`'s autograd on `forward_qualname`, with `backward_op` (an op of the
    same schema as `<name>_backward`) as its fused backward."""
    spec = SPECS[name]
    torch.library.register_autograd(
        forward_qualname, spec.make_backward(backward_op), setup_context=spec.setup_context
    )
    _register_backward_autograd(backward_op.default, spec.reference_backward)


def _register_backward_autograd(backward_op, reference_backward: Callable) -> None:
    backward, setup_context = _backward_op_autograd(reference_backward)
    torch.library.register_autograd(backward_op, backward, setup_context=setup_context)


def _backward_op_autograd(reference_backward: Callable) -> tuple[Callable, Callable]:
    """(backward, setup_context) for a `<name>_backward` op: the vector-Jacobian product of
    `reference_backward` at the op's arguments, kept in the graph."""

    def setup_context(ctx, inputs, output) -> None:
        ctx.tensor_at = [i for i, x in enumerate(inputs) if isinstance(x, torch.Tensor)]
        ctx.save_for_backward(*(inputs[i] for i in ctx.tensor_at))
        ctx.inputs = [None if i in ctx.tensor_at else x for i, x in enumerate(inputs)]

    def backward(ctx, *grad_outputs):
        args = list(ctx.inputs)
        tensors = ctx.saved_tensors
        for i, t in zip(ctx.tensor_at, tensors):
            args[i] = t

        def fn(*xs):
            call = list(args)
            for i, x in zip(ctx.tensor_at, xs):
                call[i] = x
            return reference_backward(*call)

        grads = reference.vjp(fn, tensors, grad_outputs)
        result: list = [None] * len(args)
        for i, g in zip(ctx.tensor_at, grads):
            result[i] = g
        return tuple(result)

    return backward, setup_context


def register_op(name: str, **spec_fields) -> None:
    spec = SPECS[name] = OpSpec(**spec_fields)
    if not STATUS.loaded:
        return
    torch.library.register_fake(f"gankernels::{name}")(spec.fake)
    if spec.fake_backward is not None:
        torch.library.register_fake(f"gankernels::{name}_backward")(spec.fake_backward)
    if spec.reference_backward is not None:
        _register_backward_autograd(f"gankernels::{name}_backward", spec.reference_backward)


def backend_op(name: str, backend: str) -> Callable:
    """The op that runs `name` on a backend: the compiled op for "cpu" and "cuda", else Triton's."""
    if backend in ("cpu", "cuda"):
        return getattr(torch.ops.gankernels, name)
    if backend == "triton":
        from . import _triton

        return _triton.kernels.op(name)
    raise ValueError(f"no op for backend {backend!r}")


def call_op(
    name: str, impl: Optional[str], device_of: object, args: tuple, check: Callable[[], None]
):
    """Runs op `name` with `args` on the implementation `impl` resolves to for `device_of`'s
    device.

    `check` raises the argument error every backend shares (gankernels/ops/_checks.py). The
    compiled kernels run the same checks in C++ (csrc/checks.h), with the same messages and
    exception types, before touching any data: a valid call pays no Python per-tensor checks.
    The Triton ops run `check`'s function themselves (gankernels/ops/_triton.py); the reference
    is checked here, up front.
    """
    if not isinstance(device_of, torch.Tensor):
        check()  # names the argument that is not a tensor
    try:
        backend = resolve(impl, device_of.device)
    except (ValueError, RuntimeError):
        check()  # a bad argument (tensors on two devices, say) is the error to report
        raise
    if backend != "ref":
        return backend_op(name, backend)(*args)
    check()
    return getattr(reference, name)(*args)
