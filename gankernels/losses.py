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

from typing import Optional

import torch

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
    if kind == "least_squares":
        # a, b and c are accepted by both roles so one config dict can serve both calls.
        return ("a", "b", "c", "labels")
    if kind in F_DIVERGENCES and role == "generator":
        return ("nonsaturating",)
    return ()


def _op_params(fn: str, kind: str, role: str, params: dict) -> tuple[float, float, float, bool]:
    """(a, b, c, nonsaturating) for the op, rejecting any parameter the kind does not take."""
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
            v = params[name]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"{fn}: {name} must be a number, got {v!r}")
            values[name] = float(v)
    ns = params.get("nonsaturating", False)
    if not isinstance(ns, bool):
        raise TypeError(f"{fn}: nonsaturating must be a bool, got {ns!r}")
    return values["a"], values["b"], values["c"], ns


def _check_output(fn: str, name: str, t: object) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(
            f"{fn}: {name} must be a torch.Tensor of critic outputs, got {type(t).__name__}"
        )
    return t


def discriminator_loss(
    real_out: torch.Tensor,
    fake_out: torch.Tensor,
    kind: str = "nonsaturating",
    *,
    impl: Optional[str] = None,
    **params: float,
) -> torch.Tensor:
    """The critic's loss L_D of `kind` on its outputs for real and generated samples.

        minimax, nonsaturating  E[sp(-v_r)] + E[sp(v_g)]
        wasserstein             E[v_g] - E[v_r]
        hinge                   E[relu(1 - v_r)] + E[relu(1 + v_g)]
        least_squares           E[(v_r - b)^2]/2 + E[(v_g - a)^2]/2   (params a=-1, b=1, or
                                labels="zero_one" for TF-GAN's / StudioGAN's a=0, b=1)
        relativistic            E[sp(-(v_r - E v_g))] + E[sp(v_g - E v_r)]
        f-divergence f          -E[g_f(v_r)] + E[f*(g_f(v_g))]  (-> -D_f at the optimum)

    v_r = real_out, v_g = fake_out: raw outputs of any shapes (each averaged over all its
    elements), same dtype and device. Default kind "nonsaturating" (DCGAN). Only
    least_squares takes parameters (a, b, or a `labels` preset of LS_LABELS; c is accepted and
    unused); any other keyword is rejected by name. impl: "auto" | "cuda" | "triton" | "cpu" |
    "ref" (None defers to GANKERNELS_IMPL). Returns a 0-dim float32 tensor (float64 for
    float64 outputs).
    """
    fn = "discriminator_loss"
    kind = _check_kind(fn, kind)
    a, b, c, ns = _op_params(fn, kind, "critic", params)
    _check_output(fn, "real_out", real_out)
    _check_output(fn, "fake_out", fake_out)
    return adversarial_loss(real_out, fake_out, kind, "critic", a, b, c, ns, impl=impl)


def generator_loss(
    fake_out: torch.Tensor,
    kind: str = "nonsaturating",
    real_out: Optional[torch.Tensor] = None,
    *,
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

    v_g = fake_out, v_r = real_out (raw outputs, averaged over all their elements). Only the
    relativistic kind reads real_out, and it requires it. Default kind "nonsaturating".
    impl as in `discriminator_loss`. Returns a 0-dim float32 tensor (float64 for float64).
    """
    fn = "generator_loss"
    kind = _check_kind(fn, kind)
    a, b, c, ns = _op_params(fn, kind, "generator", params)
    _check_output(fn, "fake_out", fake_out)
    if kind == "relativistic":
        if real_out is None:
            raise ValueError(
                f"{fn}: kind 'relativistic' compares the critic's outputs on fake and real "
                f"samples, so it needs real_out; got None"
            )
        _check_output(fn, "real_out", real_out)
    else:
        if real_out is not None:
            _check_output(fn, "real_out", real_out)
        # the other kinds do not read real_out: keep it out of the op and its backward
        real_out = None
    return adversarial_loss(real_out, fake_out, kind, "generator", a, b, c, ns, impl=impl)
