"""adversarial_loss: the fused critic and generator losses of every kind in docs/math.md
section 3.
"""

from __future__ import annotations

from typing import Optional

import torch

from .. import reference
from ._checks import check_adversarial_loss
from .registry import call_op, register_op


def _fake(real_out, fake_out, kind, role, a=-1.0, b=1.0, c=0.0, nonsaturating=False):
    check_adversarial_loss(real_out, fake_out, kind, role)
    return fake_out.new_empty((), dtype=reference.opmath_dtype(fake_out.dtype))


def _fake_backward(grad_loss, real_out, fake_out, kind, role, a, b, c, nonsaturating):
    grad_real = torch.empty_like(real_out) if real_out is not None else fake_out.new_empty((0,))
    return grad_real, torch.empty_like(fake_out)


def _setup_context(ctx, inputs, output) -> None:
    real_out, fake_out, *params = inputs
    ctx.save_for_backward(real_out, fake_out)
    ctx.params = tuple(params)


def _make_backward(backward_op):
    def backward(ctx, grad_loss):
        real_out, fake_out = ctx.saved_tensors
        grad_real, grad_fake = backward_op(grad_loss, real_out, fake_out, *ctx.params)
        if real_out is None:
            grad_real = None
        return (grad_real, grad_fake) + (None,) * len(ctx.params)

    return backward


register_op(
    "adversarial_loss",
    fake=_fake,
    fake_backward=_fake_backward,
    make_backward=_make_backward,
    setup_context=_setup_context,
    reference_backward=reference.adversarial_loss_backward,
)


def adversarial_loss(
    real_out: Optional[torch.Tensor],
    fake_out: torch.Tensor,
    kind: str,
    role: str,
    a: float = -1.0,
    b: float = 1.0,
    c: float = 0.0,
    nonsaturating: bool = False,
    *,
    impl: Optional[str] = None,
) -> torch.Tensor:
    """The mean loss of `role` ("critic" or "generator") of `kind`; formulas in
    `gankernels.reference.adversarial_loss`. Returns a float32 scalar (float64 for float64)."""
    args = (real_out, fake_out, kind, role, float(a), float(b), float(c), bool(nonsaturating))
    return call_op(
        "adversarial_loss",
        impl,
        fake_out,
        args,
        lambda: check_adversarial_loss(real_out, fake_out, kind, role),
    )
