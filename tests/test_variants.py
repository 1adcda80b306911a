"""GAN variants: every built-in one trains a step, their invariants hold, and the entry-point
registry reports unknown names, failing plugins and name clashes clearly."""

from __future__ import annotations

import importlib.metadata
import math
import os
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch
from torch import nn

import gankernels
from gankernels import variants
from gankernels.__main__ import main as cli_main
from gankernels.variants import Defaults, PluginLoadWarning, Variant, VariantConflictError

BUILTIN = (
    "gan",
    "nsgan",
    "wgan",
    "wgan-gp",
    "wgan-lp",
    "dragan",
    "r1",
    "lsgan",
    "hinge",
    "ragan",
    "fgan-kl",
    "fgan-reverse-kl",
    "fgan-pearson",
    "fgan-neyman",
    "fgan-squared-hellinger",
    "fgan-js",
    "fgan-tv",
    "began",
    "mmd-gan",
    "sobolev-gan",
    "sngan",
)
# The variants whose critic loss is an adversarial term plus a gradient penalty (logged apart).
PENALTY_VARIANTS = ("wgan-gp", "wgan-lp", "dragan", "r1", "mmd-gan")
CRITIC_KINDS = {"began": "autoencoder", "mmd-gan": "features"}
# The CPU kernels must be there (a missing _C fails, never skips); "ref" is the plain-PyTorch path.
IMPLS = ("ref", "cpu")
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def fresh_registry():
    """Every test reads the entry points anew and leaves no in-process registration behind."""
    variants.reload()
    yield
    variants.reload()


def models(variant: Variant, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """A small 2-D MLP generator and critic (an autoencoder critic for BEGAN, 4 features for
    MMD-GAN), the critic as the variant prepares it (spectral normalisation for SNGAN)."""
    torch.manual_seed(seed)
    generator = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    outputs = {"autoencoder": 2, "features": 4, "score": 1}[variant.critic_kind]
    critic = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, outputs))
    return generator, variant.prepare_critic(critic)


def batch(seed: int = 1, n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    real = torch.randn(n, 2, generator=gen) * 0.5 + 1.0
    z = torch.randn(n, 2, generator=gen)
    return real, z


def optimizer(variant: Variant, params, lr: float) -> torch.optim.Optimizer:
    d = variant.defaults
    if d.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=d.betas)


def flat(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()]).clone()


def critic_step(variant, critic, generator, real, z, state, impl, opt):
    """One critic step as the trainer takes it."""
    opt.zero_grad(set_to_none=True)
    loss, logs = variant.critic_loss(critic, generator, real, z, state, impl=impl)
    loss.backward()
    opt.step()
    state["step"] += 1
    after = variant.after_critic_step(critic, state, impl=impl)
    return loss, logs, after


def check_logs(logs: dict) -> None:
    for key, value in logs.items():
        assert isinstance(value, torch.Tensor) and value.dim() == 0, key
        assert not value.requires_grad, f"log {key!r} is not detached"
        assert torch.isfinite(value), f"log {key!r} = {value}"


# --- the registry sees every built-in variant ------------------------------------------------


def test_builtin_variants_are_registered_through_entry_points():
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group=variants.GROUP)}
    missing = [name for name in BUILTIN if name not in eps]
    assert not missing, f"entry points missing (refresh the editable install?): {missing}"
    assert set(BUILTIN) <= set(variants.available())
    for name in BUILTIN:
        v = variants.get(name)
        assert isinstance(v, Variant) and v.name == name
        assert eps[name].value.startswith("gankernels_plugins."), eps[name].value
        assert variants.distribution_of(name) == "gankernels"
        assert v.description and "\n" not in v.description
        assert v.critic_kind == CRITIC_KINDS.get(name, "score")
    assert variants.failed() == [], variants.failed()


def test_defaults_follow_docs_math_section_5():
    wgan = variants.get("wgan").defaults
    assert (wgan.n_critic, wgan.optimizer, wgan.lr_critic, wgan.lr_generator, wgan.clip_value) == (
        5,
        "rmsprop",
        5e-5,
        5e-5,
        0.01,
    )
    assert wgan.penalty_weight is None
    for name in ("wgan-gp", "wgan-lp"):
        d = variants.get(name).defaults
        assert (d.n_critic, d.optimizer, d.lr_critic, d.betas) == (5, "adam", 1e-4, (0.5, 0.9))
        # the paper's lambda; images keep it (plugins/wgan.py)
        assert d.penalty_weight == 10.0 and d.clip_value is None
        assert d.options["one_sided"] is (name == "wgan-lp")
        # tuned for the toy sets: 0.1, the toy-code value, trains the 2-D sets far better
        assert d.points == {"lr_critic": 3e-3, "lr_generator": 3e-3, "penalty_weight": 0.1}
        assert d.for_points().penalty_weight == 0.1
    dragan = variants.get("dragan").defaults
    assert (dragan.n_critic, dragan.lr_critic, dragan.betas, dragan.penalty_weight) == (
        1,
        1e-4,
        (0.5, 0.9),
        10.0,
    )
    assert dragan.options["perturb"] == 0.5
    r1 = variants.get("r1").defaults
    assert (r1.n_critic, r1.penalty_weight, r1.options["lazy_interval"]) == (1, 10.0, 16)
    for d in (dragan, r1):
        assert d.points == {"lr_critic": 1e-3, "lr_generator": 3e-4, "penalty_weight": 0.1}
    for name in ("gan", "nsgan", "lsgan", "hinge", "ragan") + tuple(
        n for n in BUILTIN if n.startswith("fgan-")
    ):
        d = variants.get(name).defaults
        assert (d.n_critic, d.optimizer, d.lr_critic, d.lr_generator, d.betas) == (
            1,
            "adam",
            2e-4,
            2e-4,
            (0.5, 0.999),
        ), name
        assert d.penalty_weight is None and d.clip_value is None, name
        # two time-scale rates on the toy sets (plugins/_common.py, plugins/fgan.py), except
        # for the f-GANs that TTUR did not help
        ttur = {"lr_critic": 1e-3, "lr_generator": 1e-4}
        papers = ("fgan-reverse-kl", "fgan-neyman", "fgan-squared-hellinger", "fgan-tv")
        if name in ("gan", "hinge", "ragan"):  # a faster generator (their docstrings)
            ttur = {"lr_critic": 1e-3, "lr_generator": 3e-4}
        assert d.points == ({} if name in papers else ttur), name
    began = variants.get("began").defaults.options
    assert (began["gamma"], began["lambda_k"], began["eta"]) == (0.5, 0.001, 1.0)
    for name in ("mmd-gan", "sobolev-gan"):
        d = variants.get(name).defaults
        assert (d.n_critic, d.optimizer, d.lr_critic, d.lr_generator, d.betas) == (
            5,
            "adam",
            1e-4,
            1e-4,
            (0.5, 0.9),
        ), name
        assert d.clip_value is None
    mmd = variants.get("mmd-gan").defaults
    assert mmd.penalty_weight == 1.0 and tuple(mmd.options["sigmas"]) == (1, 2, 4, 8, 16)
    sobolev = variants.get("sobolev-gan").defaults
    assert sobolev.penalty_weight is None and sobolev.options["rho"] == 1e-5
    assert sobolev.points == {"lr_critic": 2e-3, "lr_generator": 2e-3}
    sngan = variants.get("sngan").defaults
    assert (sngan.n_critic, sngan.lr_critic, sngan.lr_generator, sngan.betas) == (
        5,
        2e-4,
        2e-4,
        (0.0, 0.9),
    )
    assert sngan.penalty_weight is None and sngan.clip_value is None
    assert sngan.points == {"n_critic": 1, "lr_critic": 1e-3, "lr_generator": 3e-4}


# --- one step of every variant ---------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", BUILTIN)
def test_one_critic_and_one_generator_step(name, impl):
    variant = variants.get(name)
    generator, critic = models(variant)
    real, z = batch()
    state = variant.init_state(CPU)
    # A larger learning rate than the defaults so that every change is far above rounding.
    opt_c = optimizer(variant, critic.parameters(), 1e-2)
    opt_g = optimizer(variant, generator.parameters(), 1e-2)

    c0, g0 = flat(critic), flat(generator)
    loss, logs, after = critic_step(variant, critic, generator, real, z, state, impl, opt_c)
    assert loss.dim() == 0 and torch.isfinite(loss), loss
    assert torch.equal(flat(generator), g0), "a critic step changed the generator"
    assert not torch.equal(flat(critic), c0), "a critic step left the critic unchanged"
    check_logs(logs)
    check_logs(after)
    assert torch.equal(logs["loss"], loss.detach())
    if name in PENALTY_VARIANTS:
        # r1's first step (state["step"] == 0) is a regularisation step for any interval.
        assert "grad_norm" in logs and "penalty" in logs
        assert logs["grad_norm"] > 0
        assert torch.allclose(logs["adversarial"] + logs["penalty"], logs["loss"])
    elif name == "sobolev-gan":
        # The constraint's gradient norms are logged; it has no separate penalty term.
        assert logs["grad_norm"] > 0 and "penalty" not in logs
    else:
        assert "grad_norm" not in logs and "penalty" not in logs

    c1 = flat(critic)
    loss_g, logs_g = variant.generator_loss(critic, generator, real, z, state, impl=impl)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    assert loss_g.dim() == 0 and torch.isfinite(loss_g), loss_g
    assert not torch.equal(flat(generator), g0), "a generator step left the generator unchanged"
    assert torch.equal(flat(critic), c1), "a generator step changed the critic's weights"
    check_logs(logs_g)


@pytest.mark.parametrize("name", BUILTIN)
def test_fused_and_reference_paths_give_the_same_losses(name):
    """The variant's losses with the CPU kernels equal those with the reference (same draws)."""
    variant = variants.get(name)
    results = {}
    for impl in IMPLS:
        generator, critic = models(variant)
        real, z = batch()
        state = variant.init_state(CPU)
        torch.manual_seed(123)  # the penalties' eps and DRAGAN's perturbation
        loss, logs = variant.critic_loss(critic, generator, real, z, state, impl=impl)
        loss.backward()
        grads = torch.cat([p.grad.reshape(-1) for p in critic.parameters()])
        loss_g, _ = variant.generator_loss(critic, generator, real, z, state, impl=impl)
        results[impl] = (loss.detach(), grads, loss_g.detach())
    for a, b in zip(results["ref"], results["cpu"]):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


# --- invariants ------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_wgan_critic_weights_lie_in_the_clip_range_after_a_step(impl):
    variant = variants.get("wgan").configure(clip_value=0.05)
    generator, critic = models(variant)
    c = variant.defaults.clip_value
    # nn.Linear's initial weights reach 1/sqrt(fan_in) = 0.25 here, far outside [-c, c].
    assert max(p.abs().max() for p in critic.parameters()) > 4 * c
    state = variant.init_state(CPU)
    opt = optimizer(variant, critic.parameters(), 1.0)  # a huge step pushes weights out again
    real, z = batch()
    for _ in range(3):
        _, _, after = critic_step(variant, critic, generator, real, z, state, impl, opt)
        for p in critic.parameters():
            assert p.abs().max() <= c, p.abs().max()
        saturation = after["clip_saturation"]
        assert 0 < saturation <= 1
    # The logged saturation is the fraction of weights sitting at +-c.
    at_bound = sum(int((p.abs() == torch.tensor(c)).sum()) for p in critic.parameters())
    total = sum(p.numel() for p in critic.parameters())
    assert math.isclose(float(after["clip_saturation"]), at_bound / total, rel_tol=1e-6)


def test_began_k_follows_its_update_and_stays_in_0_1():
    base = variants.get("began")
    real, z = batch()
    for gamma, bound in ((50.0, 1.0), (1e-3, 0.0)):
        # A huge lambda_k drives k to a bound within a few steps; the clamp must hold it there.
        variant = base.configure(gamma=gamma, lambda_k=0.5)
        generator, critic = models(variant)
        state = variant.init_state(CPU)
        assert state["k"].device == CPU and float(state["k"]) == 0.0
        opt = optimizer(variant, critic.parameters(), 1e-3)
        for _ in range(12):
            k_before = state["k"].clone()
            _, logs, after = critic_step(variant, critic, generator, real, z, state, "auto", opt)
            assert isinstance(state["k"], torch.Tensor) and state["k"].dim() == 0
            k = float(after["k"])
            assert 0.0 <= k <= 1.0, k
            assert torch.equal(after["k"], state["k"])
            expected = float(k_before) + 0.5 * (
                gamma * float(logs["recon_real"]) - float(logs["recon_fake"])
            )
            assert k == pytest.approx(min(max(expected, 0.0), 1.0), abs=1e-6)
            # L_D = L(x_r) - k_t L(x_g) with the k before the update.
            assert float(logs["loss"]) == pytest.approx(
                float(logs["recon_real"]) - float(k_before) * float(logs["recon_fake"]),
                rel=1e-5,
                abs=1e-7,
            )
        assert float(state["k"]) == bound


def test_began_reconstruction_loss_uses_eta():
    variant = variants.get("began").configure(eta=2.0)
    _, critic = models(variant)
    real, _ = batch()
    expected = (real - critic(real)).abs().pow(2).mean(1)
    torch.testing.assert_close(variant.reconstruction_loss(critic, real), expected)


@pytest.mark.parametrize("interval", (1, 4))
def test_r1_lazy_interval_applies_the_scaled_penalty_on_the_right_steps(interval):
    variant = variants.get("r1").configure(lazy_interval=interval)
    generator, critic = models(variant)
    real, z = batch()
    gamma = variant.defaults.penalty_weight
    direct = gankernels.r1_penalty(critic, real, gamma=gamma, impl="ref")
    applied = []
    for step in range(9):
        state = {"step": step}
        loss, logs = variant.critic_loss(critic, generator, real, z, state, impl="cpu")
        if "penalty" in logs:
            applied.append(step)
            # Scaled by the interval so that its average strength per step is unchanged.
            torch.testing.assert_close(logs["penalty"], interval * direct.detach())
            torch.testing.assert_close(loss.detach(), logs["adversarial"] + logs["penalty"])
        else:
            assert "grad_norm" not in logs
            torch.testing.assert_close(loss.detach(), logs["adversarial"])
    assert applied == [s for s in range(9) if s % interval == 0]


@pytest.mark.parametrize("name,one_sided", (("wgan-gp", False), ("wgan-lp", True)))
def test_wgan_penalties_equal_the_public_gradient_penalty(name, one_sided):
    variant = variants.get(name)
    generator, critic = models(variant)
    real, z = batch()
    torch.manual_seed(7)
    _, logs = variant.critic_loss(critic, generator, real, z, variant.init_state(CPU), impl="cpu")
    torch.manual_seed(7)
    with torch.no_grad():
        fake = generator(z)
    penalty, norms = gankernels.gradient_penalty(
        critic,
        real,
        fake,
        weight=variant.defaults.penalty_weight,
        one_sided=one_sided,
        return_norms=True,
        impl="ref",
    )
    torch.testing.assert_close(logs["penalty"], penalty.detach())
    torch.testing.assert_close(logs["grad_norm"], norms.mean().detach())


def test_zero_penalty_weight_skips_the_penalty():
    variant = variants.get("wgan-gp").configure(penalty_weight=0.0)
    generator, critic = models(variant)
    real, z = batch()
    loss, logs = variant.critic_loss(critic, generator, real, z, variant.init_state(CPU))
    assert "penalty" not in logs
    torch.testing.assert_close(loss.detach(), logs["adversarial"])


def test_ragan_generator_loss_reads_the_real_scores():
    variant = variants.get("ragan")
    generator, critic = models(variant)
    real, z = batch()
    loss, _ = variant.generator_loss(critic, generator, real, z, {"step": 0}, impl="ref")
    with torch.no_grad():
        expected = gankernels.generator_loss(
            critic(generator(z)), kind="relativistic", real_out=critic(real), impl="ref"
        )
    torch.testing.assert_close(loss.detach(), expected)


# --- configuration and bad input -------------------------------------------------------------


def test_configure_returns_a_copy_with_fields_and_options_replaced():
    base = variants.get("r1")
    new = base.configure(n_critic=2, lr_critic=1e-3, lazy_interval=4)
    assert (new.defaults.n_critic, new.defaults.lr_critic) == (2, 1e-3)
    assert new.defaults.options["lazy_interval"] == 4
    assert new.name == "r1" and type(new) is type(base)
    assert base.defaults.n_critic == 1 and base.defaults.options["lazy_interval"] == 16
    assert variants.get("r1") is base
    merged = base.configure(options={"lazy_interval": 2})
    assert merged.defaults.options == {"lazy_interval": 2}


@pytest.mark.parametrize(
    "name,overrides,message",
    [
        ("r1", {"lazy_interval": 0}, "option 'lazy_interval' of variant 'r1' must be an int >= 1"),
        ("r1", {"lazy_interval": 2.5}, "must be an int >= 1, got 2.5"),
        ("wgan-gp", {"penalty_weight": None}, "penalty_weight must be a number >= 0, got None"),
        ("nsgan", {"penalty_weight": 1.0}, "variant 'nsgan' has no gradient penalty"),
        (
            "wgan-gp",
            {"lambda_gp": 1.0},
            "variant 'wgan-gp' has no setting 'lambda_gp'; expected one",
        ),
        ("gan", {"n_critic": 0}, "n_critic must be an int >= 1, got 0"),
        ("gan", {"optimizer": "sgd"}, "optimizer must be one of ('adam', 'rmsprop'), got 'sgd'"),
        ("gan", {"lr_critic": -1.0}, "lr_critic must be a finite number > 0, got -1.0"),
        ("gan", {"betas": (0.5, 1.5)}, "betas must be two numbers in [0, 1)"),
        ("wgan", {"clip_value": 0.0}, "clip_value must be a finite number > 0, got 0.0"),
        ("began", {"gamma": -0.5}, "option 'gamma' of variant 'began' must be a finite number > 0"),
        (
            "fgan-kl",
            {"nonsaturating": 1},
            "option 'nonsaturating' of variant 'fgan-kl' must be a bool",
        ),
        ("dragan", {"perturb": float("nan")}, "option 'perturb' of variant 'dragan'"),
    ],
)
def test_bad_configuration_is_rejected_by_name(name, overrides, message):
    with pytest.raises(ValueError, match=None) as info:
        variants.get(name).configure(**overrides)
    assert message in str(info.value)


def test_score_critic_with_wrong_output_shape_is_rejected():
    variant = variants.get("nsgan")
    generator, _ = models(variant)
    real, z = batch()
    with pytest.raises(
        ValueError,
        match=r"variant 'nsgan': the critic must return one score per "
        r"sample, shape \[32\] or \[32, 1\], got \[32, 2\]",
    ):
        variant.critic_loss(nn.Linear(2, 2), generator, real, z, {"step": 0})


def test_began_with_a_score_critic_is_rejected():
    variant = variants.get("began")
    generator, _ = models(variant)
    real, z = batch()
    with pytest.raises(
        ValueError,
        match=r"variant 'began' needs an autoencoder critic returning "
        r"a reconstruction of its input's shape \[32, 2\], "
        r"got \[32, 1\]",
    ):
        variant.critic_loss(nn.Linear(2, 1), generator, real, z, variant.init_state(CPU))


def test_variant_constructor_checks_its_arguments():
    with pytest.raises(ValueError, match="name must be a non-empty string without spaces"):
        Variant("my gan", "x")
    with pytest.raises(ValueError, match="description of variant 'x' must be one non-empty line"):
        Variant("x", "two\nlines")
    with pytest.raises(ValueError, match="critic_kind must be one of"):
        Variant("x", "y", critic_kind="energy")
    with pytest.raises(TypeError, match="defaults must be a gankernels.variants.Defaults"):
        Variant("x", "y", {"n_critic": 5})
    with pytest.raises(NotImplementedError, match="variant 'x' does not define critic_loss"):
        Variant("x", "y").critic_loss(None, None, None, None, {})


# --- the registry: unknown names, in-process registration, broken and clashing plugins -------


def test_unknown_name_lists_the_known_ones_and_the_nearest():
    with pytest.raises(KeyError) as info:
        variants.get("wgan_gp")
    message = info.value.args[0]
    assert "unknown GAN variant 'wgan_gp'; did you mean 'wgan-gp'?" in message
    assert "Known variants: " + ", ".join(sorted(variants.available())) in message
    with pytest.raises(
        KeyError, match="unknown GAN variant 'xyzzy' Known variants: aae, acgan, began"
    ):
        variants.get("xyzzy")


class Constant(Variant):
    """A test variant: L_D = mean D(x_r)^2 + mean D(G(z))^2, L_G = -mean D(G(z))."""

    def critic_loss(self, critic, generator, real, z, state, *, impl="auto"):
        loss = critic(real).square().mean() + critic(generator(z).detach()).square().mean()
        return loss, {"loss": loss.detach()}

    def generator_loss(self, critic, generator, real, z, state, *, impl="auto"):
        loss = -critic(generator(z)).mean()
        return loss, {"loss": loss.detach()}


def test_register_in_process():
    mine = Constant("my-test-gan", "a test variant", Defaults(n_critic=2))
    assert variants.register(mine) is mine
    assert "my-test-gan" in variants.available()
    assert variants.get("my-test-gan") is mine
    assert variants.distribution_of("my-test-gan") == variants.IN_PROCESS
    variants.register(mine)  # the same object again is not a clash
    with pytest.raises(
        VariantConflictError,
        match=r"'my-test-gan' is claimed by more than one "
        r"distribution: '<registered in process>' and "
        r"'<registered in process>'",
    ):
        variants.register(Constant("my-test-gan", "another", Defaults()))
    with pytest.raises(
        VariantConflictError,
        match=r"'wgan' is claimed by more than one "
        r"distribution: 'gankernels' and "
        r"'<registered in process>'",
    ):
        variants.register(Constant("wgan", "an impostor", Defaults()))
    replaced = variants.register(Constant("wgan", "a replacement", Defaults()), replace=True)
    assert variants.get("wgan") is replaced
    with pytest.raises(TypeError, match="variant must be a gankernels.variants.Variant, got str"):
        variants.register("wgan")


def _fake_entry_points(monkeypatch, extra: list[tuple[str, str, str]]) -> None:
    """The real entry points plus `extra` (name, value, distribution)."""
    real = list(variants._entry_points())
    fakes = [
        (importlib.metadata.EntryPoint(name, value, variants.GROUP), dist)
        for name, value, dist in extra
    ]
    monkeypatch.setattr(variants, "_entry_points", lambda: real + fakes)


# Module-level objects for the fake entry points below.
not_a_variant = object()
misnamed = Constant("other-name", "a variant whose name is not its entry point's", Defaults())


def test_failing_plugins_are_reported_once_and_do_not_break_the_others(monkeypatch):
    _fake_entry_points(
        monkeypatch,
        [
            ("broken", "gankernels_no_such_module:obj", "broken-dist"),
            ("wrong-type", f"{__name__}:not_a_variant", "typo-dist"),
            ("misnamed", f"{__name__}:misnamed", "misnamed-dist"),
        ],
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = variants.available()
        variants.available()
        variants.get("nsgan")
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning)]
    assert len(messages) == 3, messages  # once each, not once per call
    assert any(
        "'broken' from distribution 'broken-dist'" in m and "ModuleNotFoundError" in m
        for m in messages
    ), messages
    assert set(BUILTIN) <= set(names)
    assert not {"broken", "wrong-type", "misnamed"} & set(names)
    failures = {f.name: f for f in variants.failed()}
    assert failures["broken"].distribution == "broken-dist"
    assert "No module named 'gankernels_no_such_module'" in failures["broken"].error
    assert "refers to a object, not a gankernels.variants.Variant" in failures["wrong-type"].error
    assert (
        "entry point 'misnamed' refers to a variant named 'other-name'"
        in failures["misnamed"].error
    )
    with pytest.raises(
        KeyError,
        match=r"'broken' \(distribution broken-dist\) failed to load: "
        r"ModuleNotFoundError",
    ):
        variants.get("broken")


def test_two_distributions_claiming_one_name_is_an_error_naming_both(monkeypatch):
    _fake_entry_points(
        monkeypatch,
        [
            ("twin", f"{__name__}:misnamed", "first-dist"),
            ("twin", f"{__name__}:misnamed", "second-dist"),
            ("wgan", f"{__name__}:misnamed", "impostor-dist"),
        ],
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = variants.available()
    messages = sorted(str(w.message) for w in caught if w.category is PluginLoadWarning)
    assert len(messages) == 2, messages
    assert "'twin' is claimed by several distributions: first-dist and second-dist" in messages[0]
    assert "'wgan' is claimed by several distributions: gankernels and impostor-dist" in messages[1]
    assert "twin" in names
    with pytest.raises(
        VariantConflictError,
        match=r"'twin' is claimed by more than one "
        r"distribution: 'first-dist' and "
        r"'second-dist'",
    ):
        variants.get("twin")
    with pytest.raises(VariantConflictError, match=r"'gankernels' and 'impostor-dist'"):
        variants.get("wgan")
    assert variants.get("wgan-gp").name == "wgan-gp"  # the rest still work


# --- the command line ------------------------------------------------------------------------


def test_cli_lists_every_variant_with_description_and_defaults(capsys):
    assert cli_main(["variants"]) == 0
    out = capsys.readouterr().out
    for name in BUILTIN:
        v = variants.get(name)
        assert f"{name}  (gankernels, critic: {v.critic_kind})" in out
        assert v.description in out
        assert f"defaults: {v.describe_defaults()}" in out
    assert (
        "defaults: n_critic=5, rmsprop lr_critic=5e-05 lr_generator=5e-05, clip_value=0.01" in out
    )
    assert "failed plugins" not in out


def test_cli_one_variant_and_an_unknown_one(capsys):
    assert cli_main(["variants", "r1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("r1  (gankernels") and "lazy_interval=16" in out and "wgan" not in out
    assert cli_main(["variants", "r2"]) == 2
    assert "error: unknown GAN variant 'r2'; did you mean 'r1'?" in capsys.readouterr().out


def _write_dist(site: str, dist: str, entry_points: dict[str, str]) -> None:
    """A minimal installed distribution (a .dist-info folder) that importlib.metadata finds."""
    info = os.path.join(site, f"{dist.replace('-', '_')}-0.1.dist-info")
    os.makedirs(info)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    with open(os.path.join(info, "entry_points.txt"), "w") as f:
        f.write(f"[{variants.GROUP}]\n")
        f.writelines(f"{k} = {v}\n" for k, v in entry_points.items())


def test_cli_shows_failed_and_clashing_plugins_of_installed_distributions(tmp_path):
    """Real distributions on sys.path: one whose module raises on import, two claiming a name."""
    site = str(tmp_path)
    with open(os.path.join(site, "gk_exploding_plugin.py"), "w") as f:
        f.write("raise RuntimeError('this plugin is broken on purpose')\n")
    with open(os.path.join(site, "gk_twin_plugin.py"), "w") as f:
        f.write(
            textwrap.dedent("""
            from gankernels_plugins.gan import nsgan
            twin = nsgan.configure()
            twin.name = "twin"
        """)
        )
    _write_dist(site, "exploding-plugin", {"exploding": "gk_exploding_plugin:variant"})
    _write_dist(site, "twin-a", {"twin": "gk_twin_plugin:twin"})
    _write_dist(site, "twin-b", {"twin": "gk_twin_plugin:twin"})
    # No empty entry: an empty PYTHONPATH item means the current directory, i.e. the source tree.
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(p for p in (site, os.environ.get("PYTHONPATH")) if p)
    )
    # One interpreter (starting one costs seconds): `import gankernels` must read no plugin (no
    # warning, the broken module never imported), then the command line lists them all.
    code = textwrap.dedent("""
        import sys, warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import gankernels, gankernels.variants
        print("lazy:", "gk_exploding_plugin" in sys.modules, "gankernels_plugins" in sys.modules,
              gankernels.variants._REGISTRY.loaded, [str(w.message) for w in caught])
        from gankernels.__main__ import main
        sys.exit(main(["variants"]))
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    first, out = done.stdout.split("\n", 1)
    assert first == "lazy: False False False []", first
    for name in BUILTIN:
        assert f"\n{name}  (gankernels" in "\n" + out, name
    assert (
        "exploding  FAILED  (distribution exploding-plugin, gk_exploding_plugin:variant): "
        "RuntimeError: this plugin is broken on purpose"
    ) in out
    assert (
        "twin  CONFLICT: gankernels variant 'twin' is claimed by more than one distribution:"
        " 'twin-a' and 'twin-b'"
    ) in out
