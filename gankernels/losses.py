"""Adversarial losses of the critic and the generator, on the fused `adversarial_loss` op.

v_r, v_g are the raw critic outputs (logits) on real and generated samples, of any shape, each
averaged over all its elements (they may hold different numbers of samples);
sp(x) = softplus(x) = log(1 + e^x). The kinds (docs/math.md section 3):

=================  =========================================  ===================================
kind               critic loss L_D                            generator loss L_G
=================  =========================================  ===================================
minimax            E[sp(-v_r)] + E[sp(v_g)]                   -E[sp(v_g)]  (saturating)
nonsaturating      E[sp(-v_r)] + E[sp(v_g)]                   E[sp(-v_g)]
wasserstein        E[v_g] - E[v_r]                            -E[v_g]
hinge              E[relu(1 - v_r)] + E[relu(1 + v_g)]        -E[v_g]
least_squares      E[(v_r - b)^2]/2 + E[(v_g - a)^2]/2        E[(v_g - c)^2]/2
relativistic       E[sp(-(v_r - E v_g))] + E[sp(v_g - E v_r)]  E[sp(-(v_g - E v_r))]
                                                              + E[sp(v_r - E v_g)]
f-divergence f     -E[g_f(v_r)] + E[f*(g_f(v_g))]             -E[f*(g_f(v_g))], or -E[g_f(v_g)]
                                                              with nonsaturating=True
=================  =========================================  ===================================

least_squares takes labels a (fake), b (real), c (what G wants D to say), default a=-1, b=1,
c=0 (labels="pearson"), or the named preset labels="zero_one" (a=0, b=1, c=1: TF-GAN's and
StudioGAN's 0-1 coding; `LS_LABELS` lists the presets). The f-divergences (Nowozin et al.
2016) are kl, reverse_kl, pearson, neyman, squared_hellinger, jensen_shannon, gan and
total_variation, with output activation g_f and conjugate f* as in docs/math.md; at the optimum
the critic loss is -D_f(p_data || p_g).
"""

from __future__ import annotations

import math
from typing import Optional, Union

import torch

from . import reference
from .ops import adversarial_loss
from .reference import F_DIVERGENCES, LOSS_KINDS

__all__ = ["F_DIVERGENCES", "LOSS_KINDS", "LS_LABELS", "discriminator_loss", "generator_loss"]

# Named least-squares labels (a, b, c), Mao et al. 2017. "pearson" (b - c = 1, b - a = 2: the
# critic then minimises the Pearson chi^2 divergence) is the default; "zero_one" is the 0-1
# coding that TF-GAN and StudioGAN use, so a model ported from either keeps its numbers.
LS_LABELS = {
    "pearson": {"a": -1.0, "b": 1.0, "c": 0.0},
    "zero_one": {"a": 0.0, "b": 1.0, "c": 1.0},
}


def _check_kind(fn: str, kind: object) -> str:
    if not isinstance(kind, str) or kind not in LOSS_KINDS:
        raise ValueError(f"{fn}: unknown kind {kind!r}; expected one of: {', '.join(LOSS_KINDS)}")
    return kind


def _allowed_params(kind: str, role: str) -> tuple[str, ...]:
    # Each kind's parameters are accepted by both roles (the one that does not read them ignores
    # them), so that one config dict can serve both calls; nonsaturating is the generator's.
    if kind == "least_squares":
        return ("a", "b", "c", "labels")
    if kind in ("minimax", "nonsaturating"):
        return ("label_smoothing",)
    if kind == "hinge":
        return ("margin",)
    if kind in F_DIVERGENCES and role == "generator":
        return ("nonsaturating",)
    return ()


def _number(fn: str, name: str, v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{fn}: {name} must be a number, got {v!r}")
    return float(v)


def _op_params(fn: str, kind: str, role: str, params: dict) -> tuple:
    """(a, b, c, nonsaturating, label_smoothing, margin) for the op, rejecting any parameter the
    kind does not take."""
    allowed = _allowed_params(kind, role)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) if allowed else "no parameters"
        raise TypeError(
            f"{fn}: unknown parameter(s) {', '.join(unknown)} for kind {kind!r}; it takes {takes}"
        )
    labels = params.get("labels", "pearson")
    if not isinstance(labels, str) or labels not in LS_LABELS:
        raise ValueError(
            f"{fn}: unknown labels {labels!r}; expected one of: {', '.join(LS_LABELS)}"
        )
    if "labels" in params and set(params) & {"a", "b", "c"}:
        raise TypeError(f"{fn}: pass labels= (a named preset) or a, b, c, not both")
    values = dict(LS_LABELS[labels])
    for name in ("a", "b", "c"):
        if name in params:
            values[name] = _number(fn, name, params[name])
    ns = params.get("nonsaturating", False)
    if not isinstance(ns, bool):
        raise TypeError(f"{fn}: nonsaturating must be a bool, got {ns!r}")
    smoothing = _number(fn, "label_smoothing", params.get("label_smoothing", 0.0))
    if not 0 <= smoothing <= 1:
        raise ValueError(f"{fn}: label_smoothing must be in [0, 1], got {smoothing!r}")
    margin = _number(fn, "margin", params.get("margin", 1.0))
    if not math.isfinite(margin):
        raise ValueError(f"{fn}: margin must be a finite number, got {margin!r}")
    return values["a"], values["b"], values["c"], ns, smoothing, margin


def _check_output(fn: str, name: str, t: object) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(
            f"{fn}: {name} must be a torch.Tensor of critic outputs, got {type(t).__name__}"
        )
    return t


Weights = Union[torch.Tensor, float, None]


def _weights_for(fn: str, name: str, weights: Weights, out: torch.Tensor) -> Optional[torch.Tensor]:
    """The op's weights, shaped like `out`: from a number, a 0-dim tensor, one weight per sample
    ([B], for outputs [B, ...]) or one per output element (out's shape)."""
    if weights is None:
        return None
    if isinstance(weights, bool) or not isinstance(weights, (int, float, torch.Tensor)):
        raise TypeError(
            f"{fn}: {name} must be a number or a tensor of weights, got {type(weights).__name__}"
        )
    if not isinstance(weights, torch.Tensor):
        if not math.isfinite(weights):
            raise ValueError(f"{fn}: {name} must be finite, got {weights!r}")
        return torch.full_like(out, float(weights), dtype=reference.opmath_dtype(out.dtype))
    if not weights.is_floating_point():
        raise TypeError(f"{fn}: {name} must be a floating-point tensor, got {weights.dtype}")
    if weights.device != out.device:
        raise ValueError(
            f"{fn}: {name} must be on the outputs' device ({out.device}), got {weights.device}"
        )
    weights = weights.detach()  # constants of the loss, on every backend
    if weights.shape == out.shape:
        return weights
    if weights.dim() == 0:
        return weights.expand(out.shape)
    if weights.dim() == 1 and out.dim() >= 1 and weights.shape[0] == out.shape[0]:
        return weights.reshape(-1, *([1] * (out.dim() - 1))).expand(out.shape)
    batch = out.shape[0] if out.dim() else 1
    raise ValueError(
        f"{fn}: {name} must be a number, one weight per sample ([{batch}]) or one per output "
        f"{list(out.shape)}, got shape {list(weights.shape)}"
    )


def _check_reduction(fn: str, reduction: object) -> str:
    if not isinstance(reduction, str) or reduction not in reference.REDUCTIONS:
        raise ValueError(
            f"{fn}: reduction must be one of {', '.join(reference.REDUCTIONS)}, got {reduction!r}"
        )
    return reduction


def discriminator_loss(
    real_out: torch.Tensor,
    fake_out: torch.Tensor,
    kind: str = "nonsaturating",
    *,
    real_weights: Weights = None,
    fake_weights: Weights = None,
    reduction: str = "mean",
    impl: Optional[str] = None,
    **params: float,
) -> torch.Tensor:
    """The critic's loss L_D of `kind` on its outputs for real and generated samples.

        minimax, nonsaturating  E[sp(-v_r) + s v_r] + E[sp(v_g)]      (s = label_smoothing / 2)
        wasserstein             E[v_g] - E[v_r]
        hinge                   E[relu(m - v_r)] + E[relu(m + v_g)]   (m = margin, default 1)
        least_squares           E[(v_r - b)^2]/2 + E[(v_g - a)^2]/2   (params a=-1, b=1, or
                                labels="zero_one" for TF-GAN's / StudioGAN's a=0, b=1)
        relativistic            E[sp(-(v_r - E v_g))] + E[sp(v_g - E v_r)]
        f-divergence f          -E[g_f(v_r)] + E[f*(g_f(v_g))]  (-> -D_f at the optimum)

    v_r = real_out, v_g = fake_out: raw outputs of any shapes, same dtype and device. Default
    kind "nonsaturating" (DCGAN). Parameters by kind: label_smoothing (minimax, nonsaturating;
    TF-GAN's one-sided smoothing, the real label becomes 1 - label_smoothing / 2; TF-GAN's
    default is 0.25, here 0), margin (hinge), a, b or a `labels` preset of LS_LABELS
    (least_squares; c is accepted and unused); any other keyword is rejected by name.

    real_weights, fake_weights: a number, one weight per sample ([B]) or one per output; each
    element's loss is multiplied by its weight (the mean still divides by the element count).
    reduction: "mean" (default), "sum", or "none" for the per-element losses
    w_r l_r(v_r) + w_g l_g(v_g), shaped like fake_out (real_out must then have its shape).
    impl: "auto" | "cuda" | "triton" | "cpu" | "ref" (None defers to GANKERNELS_IMPL).
    Returns float32 (float64 for float64 outputs).
    """
    fn = "discriminator_loss"
    kind = _check_kind(fn, kind)
    op_params = _op_params(fn, kind, "critic", params)
    reduction = _check_reduction(fn, reduction)
    _check_output(fn, "real_out", real_out)
    _check_output(fn, "fake_out", fake_out)
    return adversarial_loss(
        real_out,
        fake_out,
        kind,
        "critic",
        *op_params,
        _weights_for(fn, "real_weights", real_weights, real_out),
        _weights_for(fn, "fake_weights", fake_weights, fake_out),
        reduction,
        impl=impl,
    )


def generator_loss(
    fake_out: torch.Tensor,
    kind: str = "nonsaturating",
    real_out: Optional[torch.Tensor] = None,
    *,
    weights: Weights = None,
    real_weights: Weights = None,
    reduction: str = "mean",
    impl: Optional[str] = None,
    **params: float,
) -> torch.Tensor:
    """The generator's loss L_G of `kind` on the critic's outputs for generated samples.

        minimax                 -E[sp(v_g)]             (saturating, as in the minimax game)
        nonsaturating           E[sp(-v_g)]
        wasserstein, hinge      -E[v_g]
        least_squares           E[(v_g - c)^2]/2        (param c=0, or labels="zero_one" for
                                c=1; a and b accepted, unused)
        relativistic            E[sp(-(v_g - E v_r))] + E[sp(v_r - E v_g)]   (needs real_out)
        f-divergence f          -E[f*(g_f(v_g))], or -E[g_f(v_g)] with nonsaturating=True

    v_g = fake_out, v_r = real_out (raw outputs). Only the relativistic kind reads real_out, and
    it requires it. Default kind "nonsaturating". `weights` weights the generated samples' terms
    as `fake_weights` does in `discriminator_loss`; `real_weights` the real term of the
    relativistic loss. reduction and impl as in `discriminator_loss`. The critic's parameters
    (label_smoothing, margin, a, b) are accepted and unused, so one config serves both calls.
    """
    fn = "generator_loss"
    kind = _check_kind(fn, kind)
    op_params = _op_params(fn, kind, "generator", params)
    reduction = _check_reduction(fn, reduction)
    _check_output(fn, "fake_out", fake_out)
    if kind == "relativistic":
        if real_out is None:
            raise ValueError(
                f"{fn}: kind 'relativistic' compares the critic's outputs on fake and real "
                f"samples, so it needs real_out; got None"
            )
        _check_output(fn, "real_out", real_out)
        real_w = _weights_for(fn, "real_weights", real_weights, real_out)
    else:
        if real_weights is not None:
            raise ValueError(f"{fn}: real_weights is for the relativistic kind, got kind {kind!r}")
        if real_out is not None:
            _check_output(fn, "real_out", real_out)
        # the other kinds do not read real_out: keep it out of the op and its backward
        real_out, real_w = None, None
    return adversarial_loss(
        real_out,
        fake_out,
        kind,
        "generator",
        *op_params,
        real_w,
        _weights_for(fn, "weights", weights, fake_out),
        reduction,
        impl=impl,
    )
