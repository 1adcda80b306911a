"""Argument checks shared by every backend, so each one fails with the same message.

Every message names the op, the argument and what was expected. The compiled kernels run the
same checks in C++ (csrc/checks.h), with the same messages and exception types (TypeError for a
dtype, ValueError otherwise), so their errors reach the user unchanged; the Triton ops and the
reference are checked here, before they run.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

from ..reference import LOSS_KINDS, REDUCTIONS, ROLES

FLOATING = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def check_tensor(op: str, name: str, t: object) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in FLOATING:
        raise TypeError(
            f"{op}: {name} must be float32, float64, float16 or bfloat16, "
            f"got {_dtype_name(t.dtype)}"
        )
    return t


def check_batch(op: str, name: str, t: torch.Tensor) -> None:
    if t.dim() == 0:
        raise ValueError(f"{op}: {name} must have a batch dimension, got a 0-dim tensor")
    if t.shape[0] == 0:
        raise ValueError(f"{op}: {name} has an empty batch (shape {list(t.shape)}); need B >= 1")


def check_same_device(
    op: str, name: str, t: torch.Tensor, ref_name: str, ref: torch.Tensor
) -> None:
    if t.device != ref.device:
        raise ValueError(
            f"{op}: {name} must be on the same device as {ref_name} ({ref.device}), got {t.device}"
        )


def check_like(
    op: str, name: str, t: torch.Tensor, ref_name: str, ref: torch.Tensor, shape: bool = True
) -> None:
    check_same_device(op, name, t, ref_name, ref)
    if t.dtype != ref.dtype:
        raise TypeError(
            f"{op}: {name} must have the same dtype as {ref_name} ({_dtype_name(ref.dtype)}), "
            f"got {_dtype_name(t.dtype)}"
        )
    if shape and t.shape != ref.shape:
        raise ValueError(
            f"{op}: {name} must have the same shape as {ref_name} {list(ref.shape)}, "
            f"got {list(t.shape)}"
        )


def check_gp_interpolate(real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> None:
    op = "gp_interpolate"
    check_tensor(op, "real", real)
    check_tensor(op, "fake", fake)
    check_tensor(op, "eps", eps)
    check_batch(op, "real", real)
    check_like(op, "fake", fake, "real", real)
    if eps.device != real.device:
        raise ValueError(
            f"{op}: eps must be on the same device as real ({real.device}), got {eps.device}"
        )
    if eps.shape != (real.shape[0],):
        raise ValueError(
            f"{op}: eps must have shape [B] = [{real.shape[0]}] (one value per sample), "
            f"got {list(eps.shape)}"
        )


def check_norm_penalty(
    grad: torch.Tensor, target: float, weight: float, inv_scale: float, op: str = "norm_penalty"
) -> None:
    check_tensor(op, "grad", grad)
    check_batch(op, "grad", grad)
    if not target >= 0:
        raise ValueError(f"{op}: target must be >= 0, got {target}")
    if not inv_scale > 0:
        raise ValueError(f"{op}: inv_scale must be > 0, got {inv_scale}")
    if weight != weight:
        raise ValueError(f"{op}: weight must be a number, got {weight}")


def _check_per_sample(op: str, name: str, t: torch.Tensor, grad: torch.Tensor) -> None:
    check_tensor(op, name, t)
    check_same_device(op, name, t, "grad", grad)
    if t.dim() != 1 or t.shape[0] != grad.shape[0]:
        raise ValueError(
            f"{op}: {name} must have shape [B] = [{grad.shape[0]}] (one value per sample), "
            f"got {list(t.shape)}"
        )


def check_gp_interpolate_backward(
    grad: torch.Tensor,
    eps: torch.Tensor,
    real: Optional[torch.Tensor],
    fake: Optional[torch.Tensor],
) -> None:
    """The checks of the backward op (csrc/checks.h check_gp_interpolate_backward), for the
    Triton backward op, which autograd calls with checked arguments but a user may call too."""
    op = "gp_interpolate_backward"
    check_tensor(op, "grad", grad)
    check_tensor(op, "eps", eps)
    check_batch(op, "grad", grad)
    check_same_device(op, "eps", eps, "grad", grad)
    if eps.dim() != 1 or eps.shape[0] != grad.shape[0]:
        raise ValueError(
            f"{op}: eps must have shape [B] = [{grad.shape[0]}] (one value per sample), "
            f"got {list(eps.shape)}"
        )
    if (real is None) != (fake is None):
        raise ValueError(
            f"{op}: real and fake must both be given (for eps's gradient) or both be None"
        )
    if real is not None:
        check_tensor(op, "real", real)
        check_tensor(op, "fake", fake)
        check_like(op, "real", real, "grad", grad)
        check_like(op, "fake", fake, "grad", grad)


def check_scalar_gradient(
    op: str, name: str, t: torch.Tensor, ref_name: str, ref: torch.Tensor, what: str
) -> None:
    """The upstream gradient of a scalar output (`what` says which): a float 0-dim tensor on
    ref's device."""
    check_tensor(op, name, t)
    check_same_device(op, name, t, ref_name, ref)
    if t.dim() != 0:
        raise ValueError(f"{op}: {name} must be a 0-dim tensor ({what}), got shape {list(t.shape)}")


def check_norm_penalty_backward(
    grad_loss: torch.Tensor,
    grad_norms: Optional[torch.Tensor],
    grad: torch.Tensor,
    norms: torch.Tensor,
    target: float,
    weight: float,
    one_sided: bool,
    inv_scale: float,
) -> None:
    """The checks of the backward op (csrc/checks.h check_norm_penalty_backward)."""
    op = "norm_penalty_backward"
    check_norm_penalty(grad, target, weight, inv_scale, op)
    check_scalar_gradient(op, "grad_loss", grad_loss, "grad", grad, "the loss's gradient")
    _check_per_sample(op, "norms", norms, grad)
    if grad_norms is not None:
        _check_per_sample(op, "grad_norms", grad_norms, grad)


def check_adversarial_loss_backward(grad_loss: torch.Tensor, real_out, fake_out, *params) -> None:
    """The checks of the backward op: the forward's, then grad_loss's."""
    check_adversarial_loss(real_out, fake_out, *params[:2], *params[6:])
    check_adversarial_loss_grad(grad_loss, fake_out, params[-1])


def check_adversarial_loss(
    real_out: Optional[torch.Tensor],
    fake_out: torch.Tensor,
    kind: str,
    role: str,
    label_smoothing: float = 0.0,
    margin: float = 1.0,
    real_weights: Optional[torch.Tensor] = None,
    fake_weights: Optional[torch.Tensor] = None,
    reduction: str = "mean",
) -> None:
    op = "adversarial_loss"
    if kind not in LOSS_KINDS:
        raise ValueError(f"{op}: unknown kind {kind!r}; expected one of: {', '.join(LOSS_KINDS)}")
    if role not in ROLES:
        raise ValueError(f"{op}: role must be one of {', '.join(ROLES)}, got {role!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"{op}: reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}"
        )
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    if not math.isfinite(margin):
        raise ValueError(f"{op}: margin must be a finite number, got {margin}")
    check_tensor(op, "fake_out", fake_out)
    if fake_out.numel() == 0:
        raise ValueError(f"{op}: fake_out is empty (shape {list(fake_out.shape)}); need B >= 1")
    needs_real = role == "critic" or kind == "relativistic"
    if real_out is None:
        if needs_real:
            raise ValueError(f"{op}: the {role} loss of kind {kind!r} needs real_out, got None")
        if real_weights is not None:
            raise ValueError(f"{op}: real_weights given without real_out")
    else:
        check_tensor(op, "real_out", real_out)
        if real_out.numel() == 0:
            raise ValueError(f"{op}: real_out is empty (shape {list(real_out.shape)}); need B >= 1")
        check_like(op, "fake_out", fake_out, "real_out", real_out, shape=False)
        if reduction == "none" and needs_real and real_out.shape != fake_out.shape:
            raise ValueError(
                f"{op}: reduction 'none' adds the real and fake terms elementwise, so real_out "
                f"and fake_out must have one shape, got {list(real_out.shape)} and "
                f"{list(fake_out.shape)}"
            )
    for name, weights, out_name, out in (
        ("real_weights", real_weights, "real_out", real_out),
        ("fake_weights", fake_weights, "fake_out", fake_out),
    ):
        if weights is not None:
            check_tensor(op, name, weights)
            check_same_device(op, name, weights, out_name, out)
            if weights.shape != out.shape:
                raise ValueError(
                    f"{op}: {name} must have the same shape as {out_name} {list(out.shape)}, "
                    f"got {list(weights.shape)}"
                )


def check_adversarial_loss_grad(
    grad_loss: torch.Tensor, fake_out: torch.Tensor, reduction: str = "mean"
) -> None:
    op = "adversarial_loss_backward"
    check_tensor(op, "grad_loss", grad_loss)
    if reduction == "none":
        if grad_loss.shape != fake_out.shape:
            raise ValueError(
                f"{op}: grad_loss must have fake_out's shape {list(fake_out.shape)} (the loss "
                f"of reduction 'none'), got {list(grad_loss.shape)}"
            )
    elif grad_loss.numel() != 1:
        raise ValueError(
            f"{op}: grad_loss must hold one element (the loss is a scalar), got shape "
            f"{list(grad_loss.shape)}"
        )
    check_same_device(op, "grad_loss", grad_loss, "fake_out", fake_out)


def check_clip(params: Sequence[torch.Tensor], c: float) -> None:
    op = "clip_"
    if not isinstance(c, (int, float)) or not c > 0:
        raise ValueError(f"{op}: c must be a positive number, got {c!r}")
    if isinstance(params, torch.Tensor):
        raise TypeError(f"{op}: params must be a list of tensors, got a single tensor")
    if len(params) == 0:
        raise ValueError(f"{op}: params is empty; need at least one tensor")
    device = params[0].device if isinstance(params[0], torch.Tensor) else None
    for i, p in enumerate(params):
        check_tensor(op, f"params[{i}]", p)
        if p.device != device:
            raise ValueError(
                f"{op}: every tensor in params must be on one device; params[0] is on {device}, "
                f"params[{i}] on {p.device}"
            )
    # Every backend refuses a tensor that it cannot clamp in place before writing anything: one
    # with a stride-0 dimension of size > 1 (ATen's has_internal_overlap "yes", as in C++).
    for i, p in enumerate(params):
        if any(st == 0 and sz > 1 for sz, st in zip(p.shape, p.stride())):
            raise ValueError(
                f"{op}: params[{i}] has elements that share memory (e.g. an expanded tensor) and "
                "cannot be clamped in place; clone() it first"
            )


def check_ema(target: Sequence[torch.Tensor], source: Sequence[torch.Tensor], decay: float) -> None:
    op = "ema_"
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay <= 1:
        raise ValueError(f"{op}: decay must be a number in [0, 1], got {decay!r}")
    for name, tensors in (("target", target), ("source", source)):
        if isinstance(tensors, torch.Tensor):
            raise TypeError(f"{op}: {name} must be a list of tensors, got a single tensor")
    if len(target) == 0:
        raise ValueError(f"{op}: target is empty; need at least one tensor")
    if len(target) != len(source):
        raise ValueError(
            f"{op}: target and source must hold the same number of tensors, got {len(target)} "
            f"and {len(source)}"
        )
    device = target[0].device if isinstance(target[0], torch.Tensor) else None
    for i, (t, s) in enumerate(zip(target, source)):
        check_tensor(op, f"target[{i}]", t)
        check_tensor(op, f"source[{i}]", s)
        if t.device != device:
            raise ValueError(
                f"{op}: every tensor must be on one device; target[0] is on {device}, "
                f"target[{i}] on {t.device}"
            )
        check_like(op, f"source[{i}]", s, f"target[{i}]", t)
    # Every backend refuses a target that it cannot update in place before writing anything.
    for i, t in enumerate(target):
        if any(st == 0 and sz > 1 for sz, st in zip(t.shape, t.stride())):
            raise ValueError(
                f"{op}: target[{i}] has elements that share memory (e.g. an expanded tensor) and "
                "cannot be updated in place; clone() it first"
            )


def check_mmd2(
    x: torch.Tensor,
    y: torch.Tensor,
    sigmas: Sequence[float],
    unbiased: bool,
    op: str = "mmd2",
) -> None:
    check_tensor(op, "x", x)
    check_tensor(op, "y", y)
    for name, t, rows in (("x", x, "B"), ("y", y, "B'")):
        if t.dim() != 2:
            raise ValueError(
                f"{op}: {name} must be 2-D [{rows}, D] (one feature vector per sample), "
                f"got shape {list(t.shape)}"
            )
    check_like(op, "y", y, "x", x, shape=False)
    if y.shape[1] != x.shape[1]:
        raise ValueError(
            f"{op}: y must have as many features as x (D = {x.shape[1]}), got shape {list(y.shape)}"
        )
    if x.shape[1] == 0:
        raise ValueError(f"{op}: x must have at least one feature, got shape {list(x.shape)}")
    need = 2 if unbiased else 1
    estimate = "unbiased" if unbiased else "biased"
    for name, t in (("x", x), ("y", y)):
        if t.shape[0] < need:
            raise ValueError(
                f"{op}: {name} has {t.shape[0]} samples; the {estimate} estimate needs at "
                f"least {need}"
            )
    if len(sigmas) == 0:
        raise ValueError(f"{op}: sigmas must hold at least one bandwidth, got none")
    for s in sigmas:
        if not (math.isfinite(s) and s > 0):
            raise ValueError(f"{op}: sigmas must be finite and > 0, got {float(s)}")


def check_mmd2_backward(
    grad: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    sigmas: Sequence[float],
    unbiased: bool,
) -> None:
    """The checks of the backward op (csrc/checks.h check_mmd2_backward)."""
    op = "mmd2_backward"
    check_mmd2(x, y, sigmas, unbiased, op)
    check_scalar_gradient(op, "grad", grad, "x", x, "the gradient of the scalar MMD^2")
