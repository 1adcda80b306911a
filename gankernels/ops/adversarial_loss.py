"""adversarial_loss: the fused critic and generator losses of every kind in docs/math.md
section 3.
"""

from __future__ import annotations

from typing import Optional

import torch

from .. import reference
from ._checks import check_adversarial_loss
from .registry import call_op, register_op


def _fake(
    real_out,
    fake_out,
    kind,
    role,
    a=-1.0,
    b=1.0,
    c=0.0,
    nonsaturating=False,
    label_smoothing=0.0,
    margin=1.0,
    real_weights=None,
    fake_weights=None,
    reduction="mean",
):
    check_adversarial_loss(
        real_out,
        fake_out,
        kind,
        role,
        label_smoothing,
        margin,
        real_weights,
        fake_weights,
        reduction,
    )
    opmath = reference.opmath_dtype(fake_out.dtype)
    if reduction == "none":
        return torch.empty_like(fake_out, dtype=opmath)
    return fake_out.new_empty((), dtype=opmath)


def _fake_backward(grad_loss, real_out, fake_out, *params):
    grad_real = torch.empty_like(real_out) if real_out is not None else fake_out.new_empty((0,))
    return grad_real, torch.empty_like(fake_out)


# The positions of the weights among the op's arguments after (real_out, fake_out).
_WEIGHTS = slice(8, 10)


def _setup_context(ctx, inputs, output) -> None:
    real_out, fake_out, *params = inputs
    real_weights, fake_weights = params[_WEIGHTS]
    ctx.save_for_backward(real_out, fake_out, real_weights, fake_weights)
    ctx.params = tuple(params)


def _make_backward(backward_op):
    def backward(ctx, grad_loss):
        real_out, fake_out, real_weights, fake_weights = ctx.saved_tensors
        params = list(ctx.params)
        params[_WEIGHTS] = real_weights, fake_weights
        grad_real, grad_fake = backward_op(grad_loss, real_out, fake_out, *params)
        if real_out is None:
            grad_real = None
        # The weights are constants of the loss: no gradient reaches them.
        return (grad_real, grad_fake) + (None,) * len(params)

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
    label_smoothing: float = 0.0,
    margin: float = 1.0,
    real_weights: Optional[torch.Tensor] = None,
    fake_weights: Optional[torch.Tensor] = None,
    reduction: str = "mean",
    *,
    impl: Optional[str] = None,
) -> torch.Tensor:
    """The loss of `role` ("critic" or "generator") of `kind`, weighted and reduced; formulas in
    `gankernels.reference.adversarial_loss`. Returns a float32 scalar (float64 for float64), or
    per-element losses shaped like fake_out for reduction="none"."""
    args = (
        real_out,
        fake_out,
        kind,
        role,
        float(a),
        float(b),
        float(c),
        bool(nonsaturating),
        float(label_smoothing),
        float(margin),
        real_weights,
        fake_weights,
        reduction,
    )
    return call_op(
        "adversarial_loss",
        impl,
        fake_out,
        args,
        lambda: check_adversarial_loss(
            real_out,
            fake_out,
            kind,
            role,
            label_smoothing,
            margin,
            real_weights,
            fake_weights,
            reduction,
        ),
    )
