"""What most built-in variants share: one adversarial loss kind (docs/math.md section 3),
optionally a gradient penalty (section 2) in the critic loss, and optionally weight clipping
(section 4) after each critic step. Everything runs through gankernels' public API, so `impl=`
picks the kernels.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import torch

import gankernels
from gankernels.variants import Defaults, OptimizerGroup, Variant

PENALTIES = ("gp", "dragan", "r1")

# Two time-scale learning rates (TTUR, Heusel et al. 2017) for the variants with one critic step
# per generator step on point data (`Defaults.points`): critic 1e-3, generator 1e-4. With the
# papers' 2e-4 for both, these variants collapse to one or two blobs on the toy sets (0-1/8
# ring8 modes, at 2,000 steps in the README's table of 2026-11-23 and at 10,000 below: the rates
# are what matters, not the length). Measured with the trainer's point preset (a budget of
# 10,000 critic steps, so 10,000 generator steps here; generator 256 wide, critic 128, batch 256,
# linear lr decay), one thread of a shared 2-core CPU, 2026-12-01; metrics of docs/math.md
# section 7 on 2,500 samples (seed 0 unless given):
#
#     variant   data     critic / generator lr   modes    HQ %    train s
#     gan       ring8    2e-4 / 2e-4              0/8      0.0    140
#     gan       ring8    1e-3 / 1e-4              8/8     75.6    100
#     gan       ring8    1e-3 / 1e-3              2/8     83.6    114
#     gan       grid25   1e-3 / 1e-4             19/25    45.7    146
#     nsgan     ring8    1e-3 / 1e-4              7/8     90.1     94
#     nsgan     grid25   1e-3 / 1e-4             16/25    78.0    148
#     hinge     ring8    2e-4 / 2e-4              1/8     95.4    137
#     hinge     ring8    1e-3 / 1e-4              8/8     88.4    109   (seeds 1, 2: 90.0, 87.6)
#     hinge     grid25   1e-3 / 1e-4             23/25    70.2    147
#     lsgan     ring8    1e-3 / 1e-4              6/8     87.2     98
#     lsgan     grid25   1e-3 / 1e-4              8/25    88.8     99
#     ragan     ring8    1e-3 / 1e-4              8/8     92.4     98
#     ragan     grid25   1e-3 / 1e-4             20/25    65.5    100
#     dragan    ring8    1e-3 / 1e-4              8/8     65.3    145
#     r1        ring8    1e-3 / 1e-4              8/8     82.7    117
#
# A moving average of the generator's weights (--ema-decay 0.99) changed nothing measurable
# under the linear decay (gan ring8: 75.6 % either way). The f-GANs' runs are in plugins/fgan.py
# (TTUR for fgan-kl, fgan-pearson and fgan-js); BEGAN was not measured with it and keeps its
# paper's rates.
TTUR_POINTS = {"lr_critic": 1e-3, "lr_generator": 1e-4}

# TTUR with a faster generator, for gan, ragan, hinge, r1, dragan and sngan on point data (r1
# and dragan with a penalty weight of 0.1 as well, sngan with one critic step instead of five):
# it tightens grid25's modes (their docstrings have the runs). On nsgan the same rate dropped
# grid25 to 13/25 modes and on lsgan ring8 to 3/8 (seed 0), so they keep TTUR_POINTS, as do
# the f-GANs (plugins/fgan.py has their runs).
FAST_GENERATOR_POINTS = {"lr_critic": 1e-3, "lr_generator": 3e-4}

# WGAN-GP's optimiser settings and schedule (Gulrajani et al. 2017), which the variants built on
# a gradient constraint (wgan-gp, wgan-lp, sobolev-gan, mmd-gan) share.
GP_SCHEDULE = dict(
    n_critic=5, optimizer="adam", lr_critic=1e-4, lr_generator=1e-4, betas=(0.5, 0.9)
)

# DCGAN's optimiser settings (Radford et al. 2016), the papers' defaults of the variants and
# systems with one critic step per generator step.
DCGAN_SCHEDULE = dict(
    n_critic=1, optimizer="adam", lr_critic=2e-4, lr_generator=2e-4, betas=(0.5, 0.999)
)

# DCGAN's settings with TTUR on point data.
DCGAN_DEFAULTS = Defaults(**DCGAN_SCHEDULE, points=TTUR_POINTS)

# DCGAN's settings with the faster generator on point data (gan, ragan, hinge).
DCGAN_FAST_GENERATOR_DEFAULTS = Defaults(**DCGAN_SCHEDULE, points=FAST_GENERATOR_POINTS)

# Options every variant with this penalty carries (their defaults are given per variant).
PENALTY_OPTIONS = {
    "gp": ("target", "one_sided"),
    "dragan": ("target", "perturb"),
    "r1": ("lazy_interval",),
}


def check_option(variant: str, key: str, value: Any) -> None:
    """Raise ValueError naming the variant and option when `value` is not what `key` takes."""

    def fail(expected: str) -> None:
        raise ValueError(f"option {key!r} of variant {variant!r} must be {expected}, got {value!r}")

    is_number = (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    )
    if key == "lazy_interval":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            fail("an int >= 1")
    elif key in ("one_sided", "nonsaturating"):
        if not isinstance(value, bool):
            fail("a bool")
    elif key in (
        "perturb",
        "gamma",
        "lambda_k",
        "eta",
        "rho",
        "class_weight",
        "l1_weight",
        "cycle_weight",
    ):
        if not is_number or value <= 0:
            fail("a finite number > 0")
    elif key in ("target", "identity_weight", "drift", "recon_weight"):
        if not is_number or value < 0:
            fail("a finite number >= 0")
    elif key in ("a", "b", "c"):
        if not is_number:
            fail("a finite number")
    elif key == "sigmas":
        positive = [
            isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) and s > 0
            for s in (value if isinstance(value, (list, tuple)) else [None])
        ]
        if not positive or not all(positive):
            fail("a non-empty list of finite numbers > 0")


def check_no_penalty_weight(
    variant: Variant, defaults: Defaults, why: str = "has no gradient penalty"
) -> None:
    """Raise ValueError when a variant without a penalty weight is given one."""
    if defaults.penalty_weight is not None:
        raise ValueError(
            f"variant {variant.name!r} {why}: penalty_weight must be None, "
            f"got {defaults.penalty_weight!r}"
        )


def check_variant_options(variant: Variant, defaults: Defaults, required: tuple[str, ...]) -> None:
    missing = [k for k in required if k not in defaults.options]
    if missing:
        raise ValueError(f"variant {variant.name!r} needs the options {', '.join(missing)}")
    for key, value in defaults.options.items():
        check_option(variant.name, key, value)


def critic_output(critic: Callable, x: torch.Tensor) -> Any:
    """critic(x); of a tuple or list output, its first element (the callers check the rest)."""
    out = critic(x)
    if isinstance(out, (tuple, list)) and out:
        out = out[0]
    return out


def scores(critic: Callable, x: torch.Tensor, variant: str) -> torch.Tensor:
    """critic(x) as one score per sample; a tuple output's first element is the score."""
    out = critic_output(critic, x)
    if not isinstance(out, torch.Tensor):
        raise TypeError(
            f"variant {variant!r}: the critic must return a tensor of scores, "
            f"got {type(out).__name__}"
        )
    if out.dim() == 0 or out.shape[0] != x.shape[0] or out.numel() != x.shape[0]:
        raise ValueError(
            f"variant {variant!r}: the critic must return one score per sample, "
            f"shape [{x.shape[0]}] or [{x.shape[0]}, 1], got {list(out.shape)}"
        )
    return out


def generate_detached(generator: Callable, z: torch.Tensor) -> torch.Tensor:
    """G(z) for a critic step: no graph through the generator, whose gradient is not wanted."""
    with torch.no_grad():
        return generator(z)


def generator_and_critic_optimizers(
    generator: tuple[str, ...] = ("generator",),
) -> dict[str, OptimizerGroup]:
    """A System's optimisers when it has one critic: "critic" over the network called "critic",
    "generator" over `generator` (the networks trained against it)."""
    return {
        "critic": OptimizerGroup(("critic",), "critic"),
        "generator": OptimizerGroup(generator, "generator"),
    }


# The layers that carry a weight matrix (or kernel) whose spectral norm bounds the layer's.
NORMALISED_LAYERS = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)


def spectral_normalise(module: torch.nn.Module, variant: str) -> torch.nn.Module:
    """`module` with torch's spectral normalisation (parametrizations.spectral_norm) on every
    Linear and convolution that does not have it already (SNGAN, the projection critic)."""
    from torch.nn.utils import parametrize
    from torch.nn.utils.parametrizations import spectral_norm

    layers = [m for m in module.modules() if isinstance(m, NORMALISED_LAYERS)]
    if not layers:
        raise ValueError(
            f"variant {variant!r} normalises the critic's Linear and convolution layers, "
            f"but {type(module).__name__} has none"
        )
    for layer in layers:
        # A layer the user normalised already keeps its one normalisation.
        if not parametrize.is_parametrized(layer, "weight"):
            spectral_norm(layer)
    return module


def clip_after_step(variant: Variant, critic: torch.nn.Module, impl: str) -> dict[str, Any]:
    """WGAN's w <- clamp(w, -c, c) in one fused call, when the variant has a clip value; logs the
    fraction of weights sitting at +-c (a device tensor: no host sync)."""
    c = variant.defaults.clip_value
    if c is None:
        return {}
    saturation = gankernels.clip_weights_(critic, c, impl=impl)
    return {"clip_saturation": torch.as_tensor(saturation).detach()}


class AdversarialVariant(Variant):
    """A variant made of one loss kind of `gankernels.LOSS_KINDS`, optionally a penalty:

        critic loss     L_D = loss_kind(D(x_r), D(G(z)))  [+ P]
        generator loss  L_G = loss_kind_G(D(G(z)))        (RaGAN also reads D(x_r))

    with P one of (weight lambda = defaults.penalty_weight):
        "gp"      lambda E[phi(||grad D(x_hat)|| - target)], x_hat = eps x_r + (1 - eps) G(z);
                  phi(d) = d^2, or max(d, 0)^2 with option one_sided (WGAN-LP)
        "dragan"  the same at x_hat = eps x_r + (1 - eps)(x_r + perturb std(x_r) U[0, 1))
        "r1"      gamma / 2 E[||grad D(x_r)||^2] with gamma = lambda; with option
                  lazy_interval k, applied only when state["step"] % k == 0, gamma scaled by k.
    and WGAN's weight clipping after each critic step when defaults.clip_value is set.
    """

    def __init__(
        self,
        name: str,
        description: str,
        defaults: Defaults,
        *,
        kind: str,
        critic_options: tuple[str, ...] = (),
        generator_options: tuple[str, ...] = (),
        penalty: Optional[str] = None,
    ) -> None:
        if kind not in gankernels.reference.LOSS_KINDS:
            raise ValueError(f"kind must be one of {gankernels.reference.LOSS_KINDS}, got {kind!r}")
        if penalty is not None and penalty not in PENALTIES:
            raise ValueError(f"penalty must be None or one of {PENALTIES}, got {penalty!r}")
        self.kind = kind
        # Which options are the loss's parameters, per role (lsgan's a, b / c; f-GAN's
        # nonsaturating belongs to the generator loss only).
        self.critic_options = tuple(critic_options)
        self.generator_options = tuple(generator_options)
        self.penalty = penalty
        super().__init__(name, description, defaults)

    def check_defaults(self, defaults: Defaults) -> None:
        required = (
            self.critic_options + self.generator_options + PENALTY_OPTIONS.get(self.penalty, ())
        )
        check_variant_options(self, defaults, required)
        if self.penalty is not None and defaults.penalty_weight is None:
            raise ValueError(
                f"variant {self.name!r} has a {self.penalty} penalty: "
                f"penalty_weight must be a number >= 0, got None"
            )
        if self.penalty is None:
            check_no_penalty_weight(self, defaults)

    def _loss_params(self, keys: tuple[str, ...]) -> dict[str, Any]:
        return {k: self.defaults.options[k] for k in keys}

    def _penalty(
        self,
        critic: Callable,
        real: torch.Tensor,
        fake: torch.Tensor,
        state: dict[str, Any],
        impl: str,
    ) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        """(P, per-sample norms), or None when no penalty is due at this step."""
        weight = self.defaults.penalty_weight
        opts = self.defaults.options
        if self.penalty is None or weight == 0:
            return None
        if self.penalty == "gp":
            return gankernels.gradient_penalty(
                critic,
                real,
                fake,
                weight=weight,
                target=opts["target"],
                one_sided=opts["one_sided"],
                return_norms=True,
                impl=impl,
            )
        if self.penalty == "dragan":
            return gankernels.dragan_penalty(
                critic,
                real,
                weight=weight,
                target=opts["target"],
                perturb=opts["perturb"],
                return_norms=True,
                impl=impl,
            )
        interval = opts["lazy_interval"]
        if int(state.get("step", 0)) % interval:
            return None
        # Lazy regularisation (StyleGAN2): the penalty runs every k-th step at k times the weight,
        # so its average contribution per step is unchanged.
        return gankernels.r1_penalty(
            critic, real, gamma=weight * interval, return_norms=True, impl=impl
        )

    def critic_loss(self, critic, generator, real, z, state, *, impl=None):
        fake = generate_detached(generator, z)
        real_out = scores(critic, real, self.name)
        fake_out = scores(critic, fake, self.name)
        adversarial = gankernels.discriminator_loss(
            real_out, fake_out, kind=self.kind, **self._loss_params(self.critic_options), impl=impl
        )
        loss = adversarial
        logs = {
            "adversarial": adversarial.detach(),
            "real_score": real_out.detach().mean(),
            "fake_score": fake_out.detach().mean(),
        }
        penalty = self._penalty(critic, real, fake, state, impl)
        if penalty is not None:
            value, norms = penalty
            loss = loss + value
            logs["penalty"] = value.detach()
            logs["grad_norm"] = norms.detach().mean()
        logs["loss"] = loss.detach()
        return loss, logs

    def generator_loss(self, critic, generator, real, z, state, *, impl=None):
        fake_out = scores(critic, generator(z), self.name)
        real_out = None
        if self.kind == "relativistic":
            # Only the generator's gradient is wanted: D(x_r) enters as a constant.
            with torch.no_grad():
                real_out = scores(critic, real, self.name)
        loss = gankernels.generator_loss(
            fake_out,
            kind=self.kind,
            real_out=real_out,
            **self._loss_params(self.generator_options),
            impl=impl,
        )
        return loss, {"loss": loss.detach()}

    def after_critic_step(self, critic, state, *, impl=None):
        return clip_after_step(self, critic, impl)
