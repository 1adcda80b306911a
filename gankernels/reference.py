"""Plain-PyTorch reference of every gankernels op: the correctness oracle and the eager baseline.

Each function computes the formulas of docs/math.md as directly as PyTorch allows,
accumulating in float32 for half types, and is differentiable to any order. They take the same
arguments as the fused ops (`torch.ops.gankernels.*`) and return the same dtypes; the
`<op>_backward` functions are the references of the backward ops, and the autograd of those ops
differentiates them (gankernels/ops/registry.py), so a `create_graph=True` pass through a fused
backward is itself differentiable.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "LOSS_KINDS",
    "F_DIVERGENCES",
    "opmath_dtype",
    "gp_interpolate",
    "gp_interpolate_backward",
    "norm_penalty",
    "norm_penalty_backward",
    "REDUCTIONS",
    "adversarial_loss",
    "adversarial_loss_terms",
    "adversarial_loss_backward",
    "clip_",
    "ema_",
    "mmd2",
    "mmd2_backward",
    "rbf_mixture",
    "vjp",
]

F_DIVERGENCES = (
    "kl",
    "reverse_kl",
    "pearson",
    "neyman",
    "squared_hellinger",
    "jensen_shannon",
    "gan",
    "total_variation",
)
LOSS_KINDS = (
    "minimax",
    "nonsaturating",
    "wasserstein",
    "hinge",
    "least_squares",
    "relativistic",
    *F_DIVERGENCES,
)
ROLES = ("critic", "generator")
LOG2 = math.log(2.0)


def opmath_dtype(dtype: torch.dtype) -> torch.dtype:
    """The accumulation dtype: float64 for float64, float32 for everything narrower."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def vjp(
    fn: Callable[..., object],
    inputs: Sequence[torch.Tensor],
    grad_outputs: Sequence[Optional[torch.Tensor]],
) -> tuple[Optional[torch.Tensor], ...]:
    """Vector-Jacobian product of `fn` at `inputs` with `grad_outputs`, kept in the graph (so it
    can be differentiated again).

    An input that does not require grad becomes a fresh leaf, so its gradient is still a
    function of the others and of `grad_outputs`. Outputs that are None, or that do not depend
    on the inputs, are left out.
    """
    with torch.enable_grad():
        leaves = [x if x.requires_grad else x.detach().requires_grad_() for x in inputs]
        outputs = fn(*leaves)
        if not isinstance(outputs, (tuple, list)):
            outputs = (outputs,)
        used = [
            (o, g)
            for o, g in zip(outputs, grad_outputs)
            if g is not None and o is not None and o.requires_grad
        ]
        return torch.autograd.grad(
            [o for o, _ in used],
            leaves,
            [g for _, g in used],
            create_graph=True,
            allow_unused=True,
        )


# --- 1. interpolation -------------------------------------------------------------------------


def gp_interpolate(real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x_hat_i = eps_i * real_i + (1 - eps_i) * fake_i, with eps of shape [B]."""
    opmath = opmath_dtype(real.dtype)
    e = eps.to(opmath).reshape(-1, *([1] * (real.dim() - 1)))
    return (e * real.to(opmath) + (1 - e) * fake.to(opmath)).to(real.dtype)


def gp_interpolate_backward(
    grad: torch.Tensor,
    eps: torch.Tensor,
    real: Optional[torch.Tensor],
    fake: Optional[torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """(eps * g, (1 - eps) * g, sum_j g_ij (real_ij - fake_ij)): gp_interpolate's gradients for
    the upstream gradient `grad`; eps's is None when real and fake are not given."""
    opmath = opmath_dtype(grad.dtype)
    e = eps.to(opmath).reshape(-1, *([1] * (grad.dim() - 1)))
    g = grad.to(opmath)
    grad_real = (e * g).to(grad.dtype)
    grad_fake = ((1 - e) * g).to(grad.dtype)
    grad_eps = None
    if real is not None:
        diff = (real.to(opmath) - fake.to(opmath)) * g
        grad_eps = diff.reshape(grad.shape[0], -1).sum(1).to(eps.dtype)
    return grad_real, grad_fake, grad_eps


# --- 2. norm penalty --------------------------------------------------------------------------


def norm_penalty(
    grad: torch.Tensor,
    target: float = 1.0,
    weight: float = 10.0,
    one_sided: bool = False,
    inv_scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, n) with n_i = ||inv_scale * g_i||_2 over all non-batch dims and
    P = weight / B * sum_i phi(n_i - target), phi(d) = d^2, or max(d, 0)^2 when one_sided.

    A zero row has norm 0 and gradient 0 (vector_norm's subgradient), never NaN.
    """
    flat = grad.reshape(grad.shape[0], -1).to(opmath_dtype(grad.dtype)) * inv_scale
    norms = torch.linalg.vector_norm(flat, dim=1)
    gap = norms - target
    if one_sided:
        gap = gap.clamp_min(0)
    return weight * gap.square().mean(), norms


def norm_penalty_backward(
    grad_loss: torch.Tensor,
    grad_norms: Optional[torch.Tensor],
    grad: torch.Tensor,
    norms: torch.Tensor,
    target: float,
    weight: float,
    one_sided: bool,
    inv_scale: float,
) -> torch.Tensor:
    """norm_penalty's gradient with respect to `grad`, for upstream gradients of the loss and
    (optionally) of the norms. `norms` is not read: it is recomputed, so that the result stays
    differentiable in `grad`."""
    (grad_input,) = vjp(
        lambda g: norm_penalty(g, target, weight, one_sided, inv_scale),
        [grad],
        [grad_loss, grad_norms],
    )
    return grad_input


# --- 3. adversarial losses --------------------------------------------------------------------


def softplus(v: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(v)), stable and exact for every v. (F.softplus turns linear above its
    threshold of 20, so its gradient there is exactly 1 rather than sigmoid(v): 2e-9 off in
    float64, enough to fail a float64 comparison.)"""
    return torch.logaddexp(v, v.new_zeros(()))


def _conjugate_of_activation(kind: str, v: torch.Tensor) -> torch.Tensor:
    """f*(g_f(v)) in closed form (docs/math.md section 3)."""
    if kind == "kl":
        return torch.exp(v - 1)
    if kind == "reverse_kl":
        return v - 1
    if kind == "pearson":
        return v.square() / 4 + v
    if kind == "neyman":
        return 2 - 2 * torch.exp(v / 2)
    if kind == "squared_hellinger":
        return torch.expm1(v)
    if kind == "jensen_shannon":
        return softplus(v) - LOG2
    if kind == "gan":
        return softplus(v)
    if kind == "total_variation":
        return 0.5 * torch.tanh(v)
    raise ValueError(kind)


def _activation(kind: str, v: torch.Tensor) -> torch.Tensor:
    """The f-GAN output activation g_f(v)."""
    if kind in ("kl", "pearson"):
        return v
    if kind == "reverse_kl":
        return -torch.exp(-v)
    if kind == "neyman":
        return -torch.expm1(v)
    if kind == "squared_hellinger":
        return -torch.expm1(-v)
    if kind == "jensen_shannon":
        return LOG2 - softplus(-v)
    if kind == "gan":
        return -softplus(-v)
    if kind == "total_variation":
        return 0.5 * torch.tanh(v)
    raise ValueError(kind)


REDUCTIONS = ("mean", "sum", "none")


def adversarial_loss_terms(
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
) -> tuple[Optional[torch.Tensor], torch.Tensor]:
    """The per-element losses (l_r on real_out or None when the loss does not read it, l_g on
    fake_out), in the opmath dtype; `adversarial_loss` weights and reduces them.

    v_r = real_out, v_g = fake_out (raw critic outputs):
      minimax          critic sp(-v_r) + s v_r, sp(v_g)           generator -sp(v_g)
      nonsaturating    critic as minimax                          generator sp(-v_g)
      wasserstein      critic -v_r, v_g                           generator -v_g
      hinge            critic relu(m - v_r), relu(m + v_g)        generator -v_g
      least_squares    critic (v_r-b)^2/2, (v_g-a)^2/2            generator (v_g-c)^2/2
      relativistic     critic sp(-(v_r - E v_g)), sp(v_g - E v_r)
                       generator sp(-(v_g - E v_r)) on v_g, sp(v_r - E v_g) on v_r
      f-divergence f   critic -g_f(v_r), f*(g_f(v_g))
                       generator -f*(g_f(v_g)), or -g_f(v_g) when nonsaturating
    s = label_smoothing / 2: TF-GAN's one-sided smoothing, the cross-entropy with the real label
    1 - label_smoothing / 2, (1 - s) sp(-v) + s sp(v) = sp(-v) + s v. m = margin (hinge critic).
    """
    opmath = opmath_dtype(fake_out.dtype)
    vg = fake_out.to(opmath)
    vr = real_out.to(opmath) if real_out is not None else None
    sp = softplus
    critic = role == "critic"
    if kind in ("minimax", "nonsaturating"):
        if critic:
            return sp(-vr) + 0.5 * label_smoothing * vr, sp(vg)
        return None, -sp(vg) if kind == "minimax" else sp(-vg)
    if kind == "wasserstein":
        return (-vr, vg) if critic else (None, -vg)
    if kind == "hinge":
        return (F.relu(margin - vr), F.relu(margin + vg)) if critic else (None, -vg)
    if kind == "least_squares":
        if critic:
            return 0.5 * (vr - b).square(), 0.5 * (vg - a).square()
        return None, 0.5 * (vg - c).square()
    if kind == "relativistic":
        mean_r, mean_g = vr.mean(), vg.mean()
        if critic:
            return sp(-(vr - mean_g)), sp(vg - mean_r)
        return sp(vr - mean_g), sp(-(vg - mean_r))
    if kind in F_DIVERGENCES:
        if critic:
            return -_activation(kind, vr), _conjugate_of_activation(kind, vg)
        if nonsaturating:
            return None, -_activation(kind, vg)
        return None, -_conjugate_of_activation(kind, vg)
    raise ValueError(f"unknown loss kind {kind!r}; expected one of {', '.join(LOSS_KINDS)}")


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
) -> torch.Tensor:
    """The loss of `role` ("critic" or "generator") for one kind of docs/math.md's table:

        "mean"  L = sum_j w_r,j l_r(v_r,j) / n_r + sum_k w_g,k l_g(v_g,k) / n_g
        "sum"   L = sum_j w_r,j l_r(v_r,j) + sum_k w_g,k l_g(v_g,k)
        "none"  L_k = w_r,k l_r(v_r,k) + w_g,k l_g(v_g,k), shaped like fake_out

    with the per-element losses of `adversarial_loss_terms`, the weights 1 when None (each the
    shape of its outputs), and n the number of elements of each output. A side the loss does not
    read is absent. With "none", real_out and fake_out have one shape when both are read. The
    relativistic shifts are the plain means, whatever the weights.
    """
    l_r, l_g = adversarial_loss_terms(
        real_out, fake_out, kind, role, a, b, c, nonsaturating, label_smoothing, margin
    )
    opmath = l_g.dtype
    if fake_weights is not None:
        l_g = l_g * fake_weights.to(opmath)
    if l_r is not None and real_weights is not None:
        l_r = l_r * real_weights.to(opmath)
    if reduction == "none":
        return l_g if l_r is None else l_r + l_g
    reduce = torch.mean if reduction == "mean" else torch.sum
    loss = reduce(l_g)
    return loss if l_r is None else reduce(l_r) + loss


def adversarial_loss_backward(
    grad_loss: torch.Tensor,
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
) -> tuple[Optional[torch.Tensor], torch.Tensor]:
    """adversarial_loss's gradients with respect to real_out and fake_out for the upstream
    gradient `grad_loss` (one element, or fake_out's shape for "none"); None for a missing
    real_out (the fused op returns an empty tensor). The weights are constants."""
    params = (kind, role, a, b, c, nonsaturating, label_smoothing, margin)
    weights = (real_weights, fake_weights, reduction)
    grad = grad_loss.reshape(()) if reduction != "none" else grad_loss
    if real_out is None:
        (grad_fake,) = vjp(
            lambda f: adversarial_loss(None, f, *params, *weights), [fake_out], [grad]
        )
        return None, grad_fake
    grad_real, grad_fake = vjp(
        lambda r, f: adversarial_loss(r, f, *params, *weights), [real_out, fake_out], [grad]
    )
    return grad_real, grad_fake


# --- 4. weight clipping -----------------------------------------------------------------------


def clip_(params: Sequence[torch.Tensor], c: float) -> torch.Tensor:
    """w <- clamp(w, -c, c) in place for every tensor; returns the int64 count of elements at
    +-c afterwards (c rounded to each tensor's dtype). NaN stays NaN, as in torch.clamp."""
    count = torch.zeros((), dtype=torch.int64, device=params[0].device)
    with torch.no_grad():
        for p in params:
            p.clamp_(-c, c)
            count += (p.abs() == torch.tensor(c, dtype=p.dtype, device=p.device)).sum()
    return count


# --- 5. the generator's moving average ---------------------------------------------------------


def ema_(target: Sequence[torch.Tensor], source: Sequence[torch.Tensor], decay: float) -> None:
    """t <- t + (1 - decay) * (s - t) in place for every pair (an exponential moving average of
    the source weights), computed in the opmath dtype as torch.lerp computes it, t + w (s - t)
    for w = 1 - decay < 0.5 and s - (s - t) (1 - w) otherwise (exact at decay 0 and 1), and
    rounded once to t's dtype."""
    with torch.no_grad():
        for t, s in zip(target, source):
            acc = opmath_dtype(t.dtype)
            w = torch.tensor(1.0 - decay, dtype=acc, device=t.device)
            x, y = t.to(acc), s.to(acc)
            d = y - x
            t.copy_(x + w * d if float(w) < 0.5 else y - d * (1 - w))


# --- 8. maximum mean discrepancy ---------------------------------------------------------------


def rbf_mixture(
    a: torch.Tensor, b: torch.Tensor, sigmas: Sequence[float], same: bool = False
) -> torch.Tensor:
    """sum_s exp(-||a_i - b_j||^2 / (2 s^2)) for every pair (i, j), the distances from inner
    products (differentiable to any order). For a batch against itself (`same`) the diagonal
    distance is exactly 0. mmd2 below calls it on float64 rows; the mmd-gan variant on its
    critic's features, for the witness function."""
    d2 = a.square().sum(1)[:, None] + b.square().sum(1)[None, :] - 2 * (a @ b.T)
    d2 = d2.clamp_min(0)
    if same:
        d2 = d2 * (1 - torch.eye(a.shape[0], dtype=d2.dtype, device=d2.device))
    return sum(torch.exp(d2 * (-0.5 / (s * s))) for s in sigmas)


def mmd2(x: torch.Tensor, y: torch.Tensor, sigmas: Sequence[float], unbiased: bool) -> torch.Tensor:
    """The squared maximum mean discrepancy between the rows of x [B, D] and of y [B', D] under
    k(a, b) = sum_s exp(-||a - b||^2 / (2 s^2)):

        unbiased  sum_{i!=j} k(x_i, x_j) / (B (B-1)) + sum_{i!=j} k(y_i, y_j) / (B' (B'-1))
                  - 2 sum_{i,j} k(x_i, y_j) / (B B')
        biased    the same with the diagonals kept and B^2, B'^2 as the divisors.

    Computed in float64 whatever the input dtype (the distances come from inner products, whose
    cancellation would cost float32 digits), returned in the accumulation dtype.
    """
    a, b = x.double(), y.double()
    n, m = a.shape[0], b.shape[0]
    kxx, kyy = rbf_mixture(a, a, sigmas, True), rbf_mixture(b, b, sigmas, True)
    kxy = rbf_mixture(a, b, sigmas)
    if unbiased:
        diagonal = float(len(sigmas))  # k(a, a)
        sxx = (kxx.sum() - n * diagonal) / (n * (n - 1))
        syy = (kyy.sum() - m * diagonal) / (m * (m - 1))
    else:
        sxx, syy = kxx.sum() / (n * n), kyy.sum() / (m * m)
    return (sxx + syy - 2 * kxy.sum() / (n * m)).to(opmath_dtype(x.dtype))


def mmd2_backward(
    grad: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    sigmas: Sequence[float],
    unbiased: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """mmd2's gradients with respect to x and y for the upstream gradient `grad` (0-dim)."""
    grad_x, grad_y = vjp(lambda a, b: mmd2(a, b, sigmas, unbiased), [x, y], [grad])
    return grad_x, grad_y
