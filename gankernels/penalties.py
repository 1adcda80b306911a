"""Gradient penalties on the critic: WGAN-GP, WGAN-LP, R1, R2 and DRAGAN (docs/math.md
sections 1-2).

Every penalty has the same three steps, each on a fused op where one exists:

1. the points x_hat where the critic's gradient is penalised: the per-sample interpolation
   x_hat_i = eps_i * x_r,i + (1 - eps_i) * x_g,i (`gp_interpolate`), or the samples themselves
   (R1 on real, R2 on generated);
2. g = grad_x_hat sum_i D(x_hat)_i through `torch.autograd.grad(..., create_graph=True)` (never
   `backward(create_graph=True)`, which leaks memory through a reference cycle between the
   parameters' `.grad` and the graph);
3. n_i = ||g_i||_2 over ALL non-batch elements of sample i (jointly over every differentiated
   input for a joint penalty) and P = weight / B * sum_i phi(n_i - target), phi(d) = d^2, or
   max(d, 0)^2 when one-sided (`norm_penalty`, which accumulates in float32 and has a NaN-free
   gradient at n_i = 0).

The result is part of the graph: add it to the critic loss and call `backward()` once.

Mixed precision follows PyTorch's AMP notes ("Gradient penalty"): with `scaler=` an enabled
`torch.amp.GradScaler` the critic output is multiplied by the scale on the device before
`autograd.grad`, so the float16 gradients do not underflow, and `norm_penalty` unscales them by
`inv_scale = 1 / scale` in the same pass that accumulates the norms in float32. Reading the scale
as the Python float `inv_scale` is ONE host synchronisation per call (`scaler.get_scale()`);
without a scaler there is none.

Under DistributedDataParallel the penalty needs no dummy term from the user: in a distributed
run the returned penalty carries an exact zero times the critic's scores, so its backward
reaches every parameter of the critic's forward and fires DDP's all-reduce hooks even for the
parameters that dD/dx does not depend on (the last bias), e.g. when the penalty is
backpropagated on its own (R1 lazy regularisation). Each rank's penalty is the mean over its
own samples; DDP's gradient average makes it the mean over the global batch.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence, Union

import torch

from .ops import gp_interpolate, norm_penalty

Tensors = Union[torch.Tensor, Sequence[torch.Tensor]]
Critic = Callable[..., Any]

__all__ = [
    "dragan_penalty",
    "gradient_penalty",
    "input_gradient_penalty",
    "r1_penalty",
    "r2_penalty",
]


# --- argument checks ----------------------------------------------------------------------------


def _as_tuple(fn: str, name: str, x: object) -> tuple[torch.Tensor, ...]:
    """A tensor, or a non-empty tuple/list of tensors (the inputs of a joint penalty)."""
    if isinstance(x, torch.Tensor):
        items: tuple = (x,)
    elif isinstance(x, (tuple, list)) and len(x) > 0:
        items = tuple(x)
    else:
        raise TypeError(
            f"{fn}: {name} must be a tensor or a non-empty tuple of tensors (for a joint "
            f"penalty), got {type(x).__name__}"
        )
    for i, t in enumerate(items):
        label = name if len(items) == 1 and isinstance(x, torch.Tensor) else f"{name}[{i}]"
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{fn}: {label} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{fn}: {label} must be a floating-point tensor, got {t.dtype}")
        if t.dim() == 0 or t.shape[0] == 0:
            raise ValueError(
                f"{fn}: {label} must have a non-empty batch dimension, got shape {list(t.shape)}"
            )
    batch = items[0].shape[0]
    for i, t in enumerate(items[1:], start=1):
        if t.shape[0] != batch:
            raise ValueError(
                f"{fn}: every tensor of {name} must have the same batch size; {name}[0] has "
                f"{batch}, {name}[{i}] has {t.shape[0]}"
            )
        if t.device != items[0].device:
            raise ValueError(
                f"{fn}: every tensor of {name} must be on one device; {name}[0] is on "
                f"{items[0].device}, {name}[{i}] on {t.device}"
            )
    return items


def _check_pairs(fn: str, reals: tuple[torch.Tensor, ...], fakes: tuple[torch.Tensor, ...]) -> None:
    if len(reals) != len(fakes):
        raise ValueError(
            f"{fn}: real and fake must hold the same number of tensors, got {len(reals)} real "
            f"and {len(fakes)} fake"
        )
    for i, (r, f) in enumerate(zip(reals, fakes)):
        at = "" if len(reals) == 1 else f"[{i}]"
        if r.shape != f.shape:
            raise ValueError(
                f"{fn}: real{at} and fake{at} must have the same shape, got real "
                f"{list(r.shape)} and fake {list(f.shape)}"
            )
        if r.device != f.device:
            raise ValueError(
                f"{fn}: real{at} and fake{at} must be on the same device, got real on {r.device} "
                f"and fake on {f.device}"
            )
        if r.dtype != f.dtype:
            raise TypeError(
                f"{fn}: real{at} and fake{at} must have the same dtype, got real {r.dtype} and "
                f"fake {f.dtype}"
            )


def _check_number(fn: str, name: str, value: object, *, minimum: Optional[float] = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"{fn}: {name} must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{fn}: {name} must be >= {minimum}, got {value!r}")
    return float(value)


def _check_inputs(fn: str, inputs: object) -> tuple:
    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    if not isinstance(inputs, (tuple, list)):
        raise TypeError(
            f"{fn}: inputs must be a tuple of extra arguments for D (labels, embeddings), got "
            f"{type(inputs).__name__}"
        )
    return tuple(inputs)


def _draw_eps(
    fn: str,
    eps: Optional[torch.Tensor],
    batch: int,
    device: torch.device,
    generator: Optional[torch.Generator],
) -> torch.Tensor:
    """eps_i ~ U[0, 1), one per sample, float32 on `device`; or the caller's eps, checked."""
    if eps is None:
        if generator is not None:
            # A generator draws on its own device; the values then move to the data.
            drawn = torch.rand(
                batch, generator=generator, device=generator.device, dtype=torch.float32
            )
            return drawn.to(device)
        return torch.rand(batch, device=device, dtype=torch.float32)
    if generator is not None:
        raise ValueError(f"{fn}: pass either eps or generator (which draws eps), not both")
    if not isinstance(eps, torch.Tensor):
        raise TypeError(f"{fn}: eps must be a torch.Tensor or None, got {type(eps).__name__}")
    if not eps.is_floating_point():
        raise TypeError(f"{fn}: eps must be a floating-point tensor, got {eps.dtype}")
    if eps.dim() == 0 or eps.shape[0] != batch or eps.numel() != batch:
        raise ValueError(
            f"{fn}: eps must have shape [B] or [B, 1, ..., 1] with B = {batch} (one value per "
            f"sample), got {list(eps.shape)}"
        )
    if eps.device != device:
        raise ValueError(f"{fn}: eps must be on the data's device ({device}), got {eps.device}")
    return eps.reshape(batch)


def _active_scaler(fn: str, scaler: object, device: torch.device) -> Optional[Any]:
    """The scaler when it is enabled (None for None or a disabled one), checked against autocast."""
    if scaler is None:
        return None
    if not all(hasattr(scaler, a) for a in ("scale", "get_scale", "is_enabled")):
        raise TypeError(
            f"{fn}: scaler must be a torch.amp.GradScaler (or None), got {type(scaler).__name__}"
        )
    if not scaler.is_enabled():
        return None
    if not (
        torch.amp.is_autocast_available(device.type) and torch.is_autocast_enabled(device.type)
    ):
        raise RuntimeError(
            f"{fn}: scaler is an enabled GradScaler but autocast is not enabled for device type "
            f"'{device.type}': call the penalty inside torch.autocast('{device.type}', ...) "
            f"(the critic's forward must run under autocast), or pass scaler=None"
        )
    return scaler


# --- the shared core ----------------------------------------------------------------------------


def _check_scores(fn: str, name: str, out: object, batch: int) -> torch.Tensor:
    """Critic scores of any shape [B, ...]: one per sample, or several (a PatchGAN's map)."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(
            f"{fn}: {name} returned {type(out).__name__}, expected a tensor of critic scores (or "
            f"a tuple whose first element is that tensor)"
            if name == "D"
            else f"{fn}: {name} must be a torch.Tensor of critic scores, got {type(out).__name__}"
        )
    what = "D must return" if name == "D" else f"{name} must hold"
    subject = "D's scores" if name == "D" else name
    if out.dim() == 0 or out.shape[0] != batch:
        raise ValueError(
            f"{fn}: {what} scores of shape [B, ...] with B = {batch} (one or more per sample), "
            f"got {list(out.shape)}"
        )
    if not out.is_floating_point():
        raise TypeError(f"{fn}: {subject} must be floating point, got {out.dtype}")
    if not out.requires_grad:
        raise ValueError(
            f"{fn}: {subject} do not depend on the critic's input through autograd "
            f"(requires_grad is False), so there is no gradient to penalise"
        )
    return out


def _critic_scores(
    fn: str, D: Critic, xs: tuple[torch.Tensor, ...], inputs: tuple, batch: int
) -> torch.Tensor:
    out = D(*xs, *inputs)
    if isinstance(out, (tuple, list)) and len(out) > 0:
        out = out[0]  # (score, features, ...) critics: the score comes first
    return _check_scores(fn, "D", out, batch)


def _flatten_joint(grads: Sequence[torch.Tensor], batch: int) -> torch.Tensor:
    """One [B, ...] tensor whose per-sample norm is the joint norm over every input."""
    if len(grads) == 1:
        return grads[0]
    dtype = grads[0].dtype
    for g in grads[1:]:
        dtype = torch.promote_types(dtype, g.dtype)
    return torch.cat([g.reshape(batch, -1).to(dtype) for g in grads], dim=1)


def _distributed() -> bool:
    return (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )


def _penalty_at(
    fn: str, D: Critic, xs: tuple[torch.Tensor, ...], inputs: tuple, **options
) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, norms) of D's input gradient at `xs` (each requires grad)."""
    with torch.enable_grad():
        score = _critic_scores(fn, D, xs, inputs, xs[0].shape[0])
    return _penalty_of_scores(fn, score, xs, **options)


def _penalty_of_scores(
    fn: str,
    score: torch.Tensor,
    xs: tuple[torch.Tensor, ...],
    *,
    target: float,
    weight: float,
    one_sided: bool,
    scaler: Optional[Any],
    impl: Optional[str],
    every_input_used: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, norms) of g_i = grad_{x_i} sum_k score_{i,k}: the per-sample sum of the scores, so a
    critic with several outputs per sample (a PatchGAN's [B, 1, H, W] map) is penalised on the
    gradient of their sum, as TF-GAN and `autograd.grad(score, x, ones_like(score))` do."""
    batch, device = xs[0].shape[0], xs[0].device
    create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        # Sum in (at least) float32: a float16 sum of many scores can overflow on its own.
        total = score.sum(dtype=torch.promote_types(score.dtype, torch.float32))
        inv_scale = 1.0
        if scaler is not None:
            outputs = scaler.scale(total)  # stays on the device
            inv_scale = 1.0 / scaler.get_scale()  # the one host synchronisation
        else:
            outputs = total
        grads = torch.autograd.grad(
            outputs, xs, create_graph=create_graph, allow_unused=True, materialize_grads=False
        )
    if every_input_used:
        unused = [i for i, g in enumerate(grads) if g is None]
        if unused:
            at = "x" if len(xs) == 1 else f"x[{unused[0]}]"
            raise ValueError(
                f"{fn}: the scores do not depend on {at}: compute them from it, after "
                f"{at}.requires_grad_(), so that the critic's input gradient exists"
            )
    # A critic that ignores one input of a joint penalty has a zero gradient there.
    grads = tuple(torch.zeros_like(x) if g is None else g for g, x in zip(grads, xs))
    flat = _flatten_joint(grads, batch)
    # The norm accumulates in float32 whatever autocast would pick: that is the point of it.
    if torch.amp.is_autocast_available(device.type):
        with torch.autocast(device.type, enabled=False):
            penalty, norms = norm_penalty(flat, target, weight, one_sided, inv_scale, impl=impl)
    else:
        penalty, norms = norm_penalty(flat, target, weight, one_sided, inv_scale, impl=impl)
    if create_graph and _distributed():
        # DistributedDataParallel all-reduces a parameter's gradient from a hook that fires when
        # autograd reaches that parameter. The graph of g = dD/dx does not reach every parameter
        # (the last layer's bias never influences dD/dx), so a backward of the penalty alone
        # (R1 "lazy regularisation", a separate penalty backward) would leave those buckets
        # unreduced and DDP fails on the next iteration. An exact zero through D's scores
        # reaches every parameter the forward used, so the user adds no dummy term themselves.
        penalty = penalty + 0.0 * total
    return penalty, norms


def _result(penalty: torch.Tensor, norms: torch.Tensor, return_norms: bool):
    return (penalty, norms) if return_norms else penalty


def _grad_leaves(xs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Points to differentiate at: the tensors themselves when they are in a graph (so the
    penalty's gradient reaches them), else a detached copy that requires grad (the caller's
    tensor is left untouched)."""
    return tuple(x if x.requires_grad else x.detach().requires_grad_(True) for x in xs)


# --- public API ---------------------------------------------------------------------------------


def gradient_penalty(
    D: Critic,
    real: Tensors,
    fake: Tensors,
    *,
    weight: float = 10.0,
    target: float = 1.0,
    one_sided: bool = False,
    eps: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
    inputs: Sequence[Any] = (),
    scaler: Optional[Any] = None,
    return_norms: bool = False,
    impl: Optional[str] = None,
) -> Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """The WGAN-GP penalty (Gulrajani et al. 2017), or WGAN-LP's one-sided form:

        x_hat_i = eps_i * real_i + (1 - eps_i) * fake_i,     eps_i ~ U[0, 1) per sample
        g_i     = grad_{x_hat_i} D(x_hat, *inputs)_i        (all non-batch elements, flattened)
        P       = weight / B * sum_i phi(||g_i||_2 - target)
        phi(d)  = d^2  (two-sided, default),   max(d, 0)^2  (one_sided=True, WGAN-LP)

    Defaults: weight (lambda) = 10, target (K) = 1, two-sided (docs/math.md section 5).

    Args:
        D: the critic; called as D(x_hat, *inputs) (D(*x_hats, *inputs) for a joint penalty).
            It returns scores of shape [B, ...], or a tuple whose first element is that: one
            score per sample ([B], [B, 1]) or several (a PatchGAN's [B, 1, H, W] map, as in
            pix2pix and CycleGAN), whose per-sample sum is differentiated (as TF-GAN does).
        real, fake: samples of any rank with batch dimension first, same shape, dtype and
            device. Tuples of tensors (same length) ask for a joint penalty over several inputs
            of D: each pair is interpolated with the same eps_i and ||g_i|| is the norm over all
            of them together. Gradients reach real and fake when they require grad.
        eps: the interpolation weights, shape [B] or [B, 1, ..., 1]; drawn in float32 when None.
        generator: the torch.Generator eps is drawn with (exclusive with eps).
        inputs: extra arguments passed through to D unchanged (class labels, embeddings).
        scaler: an enabled torch.amp.GradScaler when D runs under autocast: the scores are
            scaled before autograd.grad and the gradient unscaled inside the fused norm
            (one host synchronisation to read the scale). Needs autocast to be enabled.
        return_norms: also return the per-sample norms ||g_i|| ([B], float32; part of the
            graph, so `.detach()` them for logging).
        impl: "auto" | "cuda" | "triton" | "cpu" | "ref" for the fused ops; None defers to the
            GANKERNELS_IMPL environment variable.

    Returns:
        P as a 0-dim float32 tensor (float64 for float64 data), or (P, norms).
        Called under torch.no_grad() it still computes P, just without a graph to train on.
    """
    fn = "gradient_penalty"
    return _interpolated_penalty(
        fn,
        D,
        _as_tuple(fn, "real", real),
        _as_tuple(fn, "fake", fake),
        weight=weight,
        target=target,
        one_sided=one_sided,
        eps=eps,
        generator=generator,
        inputs=inputs,
        scaler=scaler,
        return_norms=return_norms,
        impl=impl,
    )


def _interpolated_penalty(
    fn: str,
    D: Critic,
    reals: tuple[torch.Tensor, ...],
    fakes: tuple[torch.Tensor, ...],
    *,
    weight: float,
    target: float,
    one_sided: bool,
    eps: Optional[torch.Tensor],
    generator: Optional[torch.Generator],
    inputs: Sequence[Any],
    scaler: Optional[Any],
    return_norms: bool,
    impl: Optional[str],
):
    _check_pairs(fn, reals, fakes)
    weight = _check_number(fn, "weight", weight)
    target = _check_number(fn, "target", target, minimum=0.0)
    extra = _check_inputs(fn, inputs)
    batch, device = reals[0].shape[0], reals[0].device
    active = _active_scaler(fn, scaler, device)
    eps = _draw_eps(fn, eps, batch, device, generator)
    with torch.enable_grad():
        # When real, fake or eps require grad, x_hat is a non-leaf of their graph and
        # autograd.grad differentiates at it directly, so the penalty's gradient flows back
        # through the fused interpolation; otherwise x_hat becomes a fresh leaf.
        x_hats = tuple(gp_interpolate(r, f, eps, impl=impl) for r, f in zip(reals, fakes))
        x_hats = tuple(x if x.requires_grad else x.requires_grad_(True) for x in x_hats)
    penalty, norms = _penalty_at(
        fn,
        D,
        x_hats,
        extra,
        target=target,
        weight=weight,
        one_sided=bool(one_sided),
        scaler=active,
        impl=impl,
    )
    return _result(penalty, norms, return_norms)


def r1_penalty(
    D: Critic,
    real: Tensors,
    gamma: float = 10.0,
    *,
    inputs: Sequence[Any] = (),
    scaler: Optional[Any] = None,
    return_norms: bool = False,
    impl: Optional[str] = None,
) -> Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """R1 (Mescheder et al. 2018): gamma / 2 * E_real ||grad_x D(x)||^2, on real samples.

        P = gamma / 2 / B * sum_i ||g_i||^2,   g_i = grad_{x_i} D(x, *inputs)_i

    That is `norm_penalty` with target 0 (so its gradient 2 * weight / B * g needs no division)
    and weight gamma / 2. Default gamma = 10 (StyleGAN uses it every 16 steps, "lazily", scaled
    by 16). A tuple `real` gives the joint penalty over several inputs of D; other arguments
    as in `gradient_penalty`. When `real` requires grad the penalty's gradient reaches it.
    """
    fn = "r1_penalty"
    return _r_penalty(fn, D, real, gamma, inputs, scaler, return_norms, impl, "real")


def r2_penalty(
    D: Critic,
    fake: Tensors,
    gamma: float = 10.0,
    *,
    inputs: Sequence[Any] = (),
    scaler: Optional[Any] = None,
    return_norms: bool = False,
    impl: Optional[str] = None,
) -> Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """R2 (Mescheder et al. 2018): gamma / 2 * E_fake ||grad_x D(x)||^2, on generated samples.

        P = gamma / 2 / B * sum_i ||g_i||^2,   g_i = grad_{x_i} D(x, *inputs)_i

    Pass `fake.detach()` for a critic-only penalty: a `fake` that requires grad (a generator's
    output) lets the penalty's gradient flow into the generator too. Default gamma = 10.
    """
    fn = "r2_penalty"
    return _r_penalty(fn, D, fake, gamma, inputs, scaler, return_norms, impl, "fake")


def input_gradient_penalty(
    scores: torch.Tensor,
    x: Tensors,
    *,
    weight: float,
    target: float = 0.0,
    one_sided: bool = False,
    scaler: Optional[Any] = None,
    return_norms: bool = False,
    impl: Optional[str] = None,
) -> Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """The norm penalty on the critic's input gradient, from scores the caller already has:

        g_i = grad_{x_i} sum_k scores_{i,k},    P = weight / B * sum_i phi(||g_i||_2 - target)

    As StyleGAN2 computes R1: one forward of the real batch serves both the loss and the
    penalty, so the critic does not run twice::

        real.requires_grad_()
        real_scores = D(real)
        loss = gk.discriminator_loss(real_scores, fake_scores) + gk.input_gradient_penalty(
            real_scores, real, weight=gamma / 2)  # R1 with gamma; target 0 is the default

    Args:
        scores: the critic's outputs on `x`, shape [B, ...] (one or several per sample),
            computed after `x.requires_grad_()` and still in the graph.
        x: the critic's input, a tensor (or a tuple of them for a joint penalty) of batch B.
        weight: the penalty's weight (R1 / R2 with gamma: gamma / 2).
        target, one_sided, scaler, return_norms, impl: as in `gradient_penalty`; the default
            target 0 is R1 / R2's.
    """
    fn = "input_gradient_penalty"
    xs = _as_tuple(fn, "x", x)
    weight = _check_number(fn, "weight", weight)
    target = _check_number(fn, "target", target, minimum=0.0)
    for i, t in enumerate(xs):
        if not t.requires_grad:
            at = "x" if len(xs) == 1 else f"x[{i}]"
            raise ValueError(
                f"{fn}: {at} does not require grad, so the scores cannot have been computed "
                f"from it in a graph: call {at}.requires_grad_() before the critic's forward"
            )
    score = _check_scores(fn, "scores", scores, xs[0].shape[0])
    penalty, norms = _penalty_of_scores(
        fn,
        score,
        xs,
        target=target,
        weight=weight,
        one_sided=bool(one_sided),
        scaler=_active_scaler(fn, scaler, xs[0].device),
        impl=impl,
        every_input_used=True,
    )
    return _result(penalty, norms, return_norms)


def _r_penalty(
    fn: str,
    D: Critic,
    x: Tensors,
    gamma: float,
    inputs: Sequence[Any],
    scaler: Optional[Any],
    return_norms: bool,
    impl: Optional[str],
    name: str,
):
    xs = _as_tuple(fn, name, x)
    gamma = _check_number(fn, "gamma", gamma, minimum=0.0)
    extra = _check_inputs(fn, inputs)
    active = _active_scaler(fn, scaler, xs[0].device)
    with torch.enable_grad():
        leaves = _grad_leaves(xs)
    penalty, norms = _penalty_at(
        fn,
        D,
        leaves,
        extra,
        target=0.0,
        weight=gamma / 2,
        one_sided=False,
        scaler=active,
        impl=impl,
    )
    return _result(penalty, norms, return_norms)


def dragan_penalty(
    D: Critic,
    real: Tensors,
    weight: float = 10.0,
    target: float = 1.0,
    perturb: float = 0.5,
    *,
    one_sided: bool = False,
    eps: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
    inputs: Sequence[Any] = (),
    scaler: Optional[Any] = None,
    return_norms: bool = False,
    impl: Optional[str] = None,
) -> Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """DRAGAN (Kodali et al. 2017): the gradient penalty around the real data.

        x_p     = real + perturb * std(real) * u,      u ~ U[0, 1) elementwise
        x_hat_i = eps_i * real_i + (1 - eps_i) * x_p,i, eps_i ~ U[0, 1) per sample
        P       = weight / B * sum_i phi(||grad_{x_hat_i} D(x_hat)_i|| - target)

    std(real) is the standard deviation of the whole batch (population std, as the original
    numpy code), one scalar per tensor, treated as a constant. Defaults: weight 10, target 1,
    perturb 0.5 (docs/math.md section 5). `generator` draws both u and eps. Other arguments as in
    `gradient_penalty`.
    """
    fn = "dragan_penalty"
    reals = _as_tuple(fn, "real", real)
    perturb = _check_number(fn, "perturb", perturb, minimum=0.0)
    if eps is not None and generator is not None:
        raise ValueError(f"{fn}: pass either eps or generator (which draws eps), not both")
    perturbed = []
    for r in reals:
        with torch.no_grad():
            std = r.detach().to(torch.promote_types(r.dtype, torch.float32)).std(correction=0)
            if generator is not None:
                u = torch.rand(
                    r.shape, generator=generator, device=generator.device, dtype=torch.float32
                ).to(r.device)
            else:
                u = torch.rand(r.shape, device=r.device, dtype=torch.float32)
            noise = (perturb * std * u).to(r.dtype)
        perturbed.append(r + noise)
    # the perturbed points play the part of `fake` in the interpolation
    return _interpolated_penalty(
        fn,
        D,
        reals,
        tuple(perturbed),
        weight=weight,
        target=target,
        one_sided=one_sided,
        eps=eps,
        generator=generator,
        inputs=inputs,
        scaler=scaler,
        return_norms=return_norms,
        impl=impl,
    )
