"""discriminator_loss and generator_loss against formulas written out from the papers."""

from __future__ import annotations

import math

import pytest
import torch

import gankernels
from gankernels import LOSS_KINDS, discriminator_loss, generator_loss
from gankernels.testing import tolerance

IMPLS = ("ref", "cpu")
RTOL, ATOL = tolerance(torch.float32)
F_DIVS = (
    "kl",
    "reverse_kl",
    "pearson",
    "neyman",
    "squared_hellinger",
    "jensen_shannon",
    "gan",
    "total_variation",
)


pytestmark = pytest.mark.usefixtures("one_thread")


def sp(x):
    return torch.log1p(torch.exp(-x.abs())) + x.clamp_min(0)


# f-GAN (Nowozin et al. 2016, Table 6): output activation g_f and conjugate f*, composed here
# literally as f*(g_f(v)), not in the simplified closed form the kernels use.
ACTIVATION = {
    "kl": lambda v: v,
    "reverse_kl": lambda v: -torch.exp(-v),
    "pearson": lambda v: v,
    "neyman": lambda v: 1 - torch.exp(v),
    "squared_hellinger": lambda v: 1 - torch.exp(-v),
    "jensen_shannon": lambda v: math.log(2) - sp(-v),
    "gan": lambda v: -sp(-v),
    "total_variation": lambda v: 0.5 * torch.tanh(v),
}
CONJUGATE = {
    "kl": lambda t: torch.exp(t - 1),
    "reverse_kl": lambda t: -1 - torch.log(-t),
    "pearson": lambda t: t * t / 4 + t,
    "neyman": lambda t: 2 - 2 * torch.sqrt(1 - t),
    "squared_hellinger": lambda t: t / (1 - t),
    "jensen_shannon": lambda t: -torch.log(2 - torch.exp(t)),
    "gan": lambda t: -torch.log(1 - torch.exp(t)),
    "total_variation": lambda t: t,
}


def textbook(kind, role, vr, vg, a=-1.0, b=1.0, c=0.0, nonsaturating=False):
    vr = vr.double() if vr is not None else None
    vg = vg.double()
    critic = role == "critic"
    if kind in ("minimax", "nonsaturating"):
        # D(x) = sigmoid(v): -E log D(x_r) - E log(1 - D(x_g))
        if critic:
            return -torch.log(torch.sigmoid(vr)).mean() - torch.log(1 - torch.sigmoid(vg)).mean()
        if kind == "minimax":
            return torch.log(1 - torch.sigmoid(vg)).mean()
        return -torch.log(torch.sigmoid(vg)).mean()
    if kind == "wasserstein":
        return vg.mean() - vr.mean() if critic else -vg.mean()
    if kind == "hinge":
        return (
            torch.clamp(1 - vr, min=0).mean() + torch.clamp(1 + vg, min=0).mean()
            if critic
            else -vg.mean()
        )
    if kind == "least_squares":
        if critic:
            return 0.5 * ((vr - b) ** 2).mean() + 0.5 * ((vg - a) ** 2).mean()
        return 0.5 * ((vg - c) ** 2).mean()
    if kind == "relativistic":
        # RaGAN: D~(x_r) = sigmoid(C(x_r) - E C(x_g)), D~(x_g) = sigmoid(C(x_g) - E C(x_r))
        d_r = torch.sigmoid(vr - vg.mean())
        d_g = torch.sigmoid(vg - vr.mean())
        if critic:
            return -torch.log(d_r).mean() - torch.log(1 - d_g).mean()
        return -torch.log(d_g).mean() - torch.log(1 - d_r).mean()
    g, fstar = ACTIVATION[kind], CONJUGATE[kind]
    if critic:
        return -g(vr).mean() + fstar(g(vg)).mean()
    return -g(vg).mean() if nonsaturating else -fstar(g(vg)).mean()


def outputs(kind, n_real=37, n_fake=23, seed=0):
    """Raw outputs in a range where every textbook form is finite (the log forms of the
    conjugates need g_f(v) inside f*'s domain)."""
    gen = torch.Generator().manual_seed(seed)
    vr = torch.randn(n_real, 1, generator=gen)
    vg = torch.randn(n_fake, generator=gen)
    if kind in ("squared_hellinger", "gan", "jensen_shannon"):
        vr, vg = vr * 0.5, vg * 0.5
    return vr, vg


@pytest.mark.parametrize("kind", LOSS_KINDS)
@pytest.mark.parametrize("impl", IMPLS)
def test_discriminator_loss_matches_textbook(kind, impl):
    vr, vg = outputs(kind)
    vr.requires_grad_(True)
    vg.requires_grad_(True)
    got = discriminator_loss(vr, vg, kind, impl=impl)
    want = textbook(kind, "critic", vr, vg)
    assert got.shape == () and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, rtol=RTOL, atol=ATOL)
    got_grads = torch.autograd.grad(got, (vr, vg))
    want_grads = torch.autograd.grad(want, (vr, vg))
    for g, w in zip(got_grads, want_grads):
        torch.testing.assert_close(g.double(), w.double(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kind", LOSS_KINDS)
@pytest.mark.parametrize("impl", IMPLS)
def test_generator_loss_matches_textbook(kind, impl):
    vr, vg = outputs(kind, seed=1)
    vg.requires_grad_(True)
    got = generator_loss(vg, kind, real_out=vr, impl=impl)
    want = textbook(kind, "generator", vr, vg)
    torch.testing.assert_close(got.double(), want, rtol=RTOL, atol=ATOL)
    (g,) = torch.autograd.grad(got, vg)
    (w,) = torch.autograd.grad(want, vg)
    torch.testing.assert_close(g.double(), w.double(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kind", F_DIVS)
@pytest.mark.parametrize("impl", IMPLS)
def test_f_divergence_nonsaturating_generator(kind, impl):
    _, vg = outputs(kind, seed=2)
    got = generator_loss(vg, kind, nonsaturating=True, impl=impl)
    want = textbook(kind, "generator", None, vg, nonsaturating=True)
    torch.testing.assert_close(got.double(), want, rtol=RTOL, atol=ATOL)
    if kind != "total_variation":  # f*(g_f(v)) = g_f(v) for TV: both forms coincide
        assert not torch.allclose(got, generator_loss(vg, kind, impl=impl))


@pytest.mark.parametrize("impl", IMPLS)
def test_least_squares_labels(impl):
    vr, vg = outputs("least_squares", seed=3)
    got = discriminator_loss(vr, vg, "least_squares", a=0.0, b=1.0, impl=impl)
    torch.testing.assert_close(
        got.double(),
        textbook("least_squares", "critic", vr, vg, a=0.0, b=1.0),
        rtol=RTOL,
        atol=ATOL,
    )
    got = generator_loss(vg, "least_squares", c=1.0, impl=impl)
    torch.testing.assert_close(
        got.double(), textbook("least_squares", "generator", None, vg, c=1.0), rtol=RTOL, atol=ATOL
    )
    # one config dict for both calls
    cfg = {"a": 0.0, "b": 1.0, "c": 1.0}
    discriminator_loss(vr, vg, "least_squares", impl=impl, **cfg)
    generator_loss(vg, "least_squares", impl=impl, **cfg)


# TF-GAN's own test inputs (losses_impl_test.py) and its least-squares expectations, which use
# the 0-1 coding: generator 0.5 * E[(v_g - 1)^2], critic 0.5 * (E[(v_r - 1)^2] + E[v_g^2]).
TFGAN_REAL = (-5.0, 1.4, 12.5, 2.7)
TFGAN_FAKE = (10.0, 4.4, -5.5, 3.6)


@pytest.mark.parametrize("impl", IMPLS)
def test_least_squares_zero_one_preset_gives_tfgan_numbers(impl):
    vr, vg = torch.tensor(TFGAN_REAL), torch.tensor(TFGAN_FAKE)
    d = discriminator_loss(vr, vg, "least_squares", labels="zero_one", impl=impl)
    g = generator_loss(vg, "least_squares", labels="zero_one", impl=impl)
    assert d.item() == pytest.approx(41.73375, rel=1e-6)
    assert g.item() == pytest.approx(17.69625, rel=1e-6)
    # the default ("pearson": a=-1, b=1, c=0) is a different loss, hence the named presets
    assert generator_loss(vg, "least_squares", impl=impl).item() == pytest.approx(
        0.5 * sum(v * v for v in TFGAN_FAKE) / 4
    )
    cfg = {"labels": "zero_one"}  # one config dict for both calls, as with a, b, c
    assert discriminator_loss(vr, vg, "least_squares", impl=impl, **cfg).item() == d.item()
    assert set(gankernels.LS_LABELS) == {"pearson", "zero_one"}


def test_least_squares_presets_are_checked():
    vr, vg = torch.tensor(TFGAN_REAL), torch.tensor(TFGAN_FAKE)
    with pytest.raises(
        ValueError,
        match=r"discriminator_loss: unknown labels 'tfgan'; expected "
        r"one of: pearson, zero_one",
    ):
        discriminator_loss(vr, vg, "least_squares", labels="tfgan")
    with pytest.raises(
        TypeError,
        match=r"generator_loss: pass labels= \(a named preset\) or a, b, "
        r"c, not both",
    ):
        generator_loss(vg, "least_squares", labels="zero_one", c=1.0)
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) labels for kind 'hinge'"):
        discriminator_loss(vr, vg, "hinge", labels="zero_one")


IMPLS_ALL = ("ref", "cpu", "triton")


@pytest.mark.parametrize("impl", IMPLS_ALL)
def test_label_smoothing_gives_tfgan_numbers(impl):
    """TF-GAN's minimax discriminator loss with its default label_smoothing=0.25 on its test
    outputs is 6.19637; unweighted, each side is the mean."""
    vr, vg = torch.tensor(TFGAN_REAL), torch.tensor(TFGAN_FAKE)
    got = discriminator_loss(vr, vg, "minimax", label_smoothing=0.25, impl=impl)
    assert got.item() == pytest.approx(6.19637, abs=1e-5)
    # TF-GAN's scalar weights (2.3 in its tests) scale the loss.
    weighted = discriminator_loss(
        vr, vg, "minimax", label_smoothing=0.25, real_weights=2.3, fake_weights=2.3, impl=impl
    )
    assert weighted.item() == pytest.approx(2.3 * 6.19637, abs=1e-4)
    # The smoothed real term is the cross-entropy with label 1 - 0.125.
    t = 1 - 0.125
    bce = torch.nn.functional.binary_cross_entropy_with_logits(vr, torch.full_like(vr, t))
    assert discriminator_loss(vr, vg, "minimax", label_smoothing=0.25, impl=impl).item() == (
        pytest.approx(bce.item() + sp(vg).mean().item(), rel=1e-6)
    )


@pytest.mark.parametrize("impl", IMPLS_ALL)
def test_hinge_margin(impl):
    vr, vg = torch.tensor(TFGAN_REAL) / 5, torch.tensor(TFGAN_FAKE) / 5
    got = discriminator_loss(vr, vg, "hinge", margin=0.5, impl=impl)
    want = torch.relu(0.5 - vr).mean() + torch.relu(0.5 + vg).mean()
    torch.testing.assert_close(got, want)
    # the generator's hinge loss has no margin; one config dict serves both calls
    torch.testing.assert_close(generator_loss(vg, "hinge", margin=0.5, impl=impl), -vg.mean())


@pytest.mark.parametrize("impl", IMPLS_ALL)
def test_per_sample_weights_broadcast_over_a_patch_map(impl):
    """One weight per sample multiplies every output of that sample (a PatchGAN's [B,1,H,W])."""
    gen = torch.Generator().manual_seed(5)
    vr, vg = torch.randn(3, 1, 4, 4, generator=gen), torch.randn(3, 1, 4, 4, generator=gen)
    w = torch.tensor([0.0, 1.0, 2.5])
    got = discriminator_loss(vr, vg, "nonsaturating", real_weights=w, fake_weights=w, impl=impl)
    wb = w.reshape(3, 1, 1, 1)
    want = (wb * sp(-vr)).mean() + (wb * sp(vg)).mean()
    torch.testing.assert_close(got, want)
    got = generator_loss(vg, "least_squares", weights=w, reduction="sum", impl=impl)
    torch.testing.assert_close(got, (wb * 0.5 * vg.square()).sum())


@pytest.mark.parametrize("impl", IMPLS_ALL)
def test_reductions(impl):
    gen = torch.Generator().manual_seed(6)
    vr, vg = torch.randn(6, generator=gen), torch.randn(6, generator=gen)
    per = discriminator_loss(vr, vg, "hinge", reduction="none", impl=impl)
    torch.testing.assert_close(per, torch.relu(1 - vr) + torch.relu(1 + vg))
    total = discriminator_loss(vr, vg, "hinge", reduction="sum", impl=impl)
    torch.testing.assert_close(total, per.sum())
    mean = discriminator_loss(vr, vg, "hinge", impl=impl)
    torch.testing.assert_close(mean, per.mean())
    # "none" keeps the samples apart: a per-sample backward is the per-sample gradient
    vg.requires_grad_()
    g_per = generator_loss(vg, "nonsaturating", reduction="none", impl=impl)
    assert g_per.shape == (6,)
    (grad,) = torch.autograd.grad(g_per, vg, torch.arange(6.0))
    torch.testing.assert_close(grad, -torch.sigmoid(-vg.detach()) * torch.arange(6.0))


def test_loss_options_are_checked():
    vr, vg = torch.zeros(4), torch.zeros(4)
    with pytest.raises(
        ValueError, match=r"discriminator_loss: label_smoothing must be in \[0, 1\]"
    ):
        discriminator_loss(vr, vg, "minimax", label_smoothing=-0.1)
    with pytest.raises(TypeError, match=r"discriminator_loss: margin must be a number"):
        discriminator_loss(vr, vg, "hinge", margin="1")
    with pytest.raises(
        ValueError, match=r"generator_loss: reduction must be one of mean, sum, none"
    ):
        generator_loss(vg, reduction="avg")
    with pytest.raises(
        ValueError,
        match=r"discriminator_loss: real_weights must be a number, one "
        r"weight per sample \(\[4\]\) or one per output \[4\], got shape \[3\]",
    ):
        discriminator_loss(vr, vg, real_weights=torch.ones(3))
    with pytest.raises(TypeError, match=r"generator_loss: weights must be a floating-point tensor"):
        generator_loss(vg, weights=torch.ones(4, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"generator_loss: real_weights is for the relativistic"):
        generator_loss(vg, "hinge", real_weights=1.0)
    with pytest.raises(
        ValueError,
        match=r"adversarial_loss: reduction 'none' adds the real and "
        r"fake terms elementwise",
    ):
        discriminator_loss(torch.zeros(5), vg, "hinge", reduction="none")


@pytest.mark.parametrize("impl", IMPLS_ALL)
def test_weights_get_no_gradient(impl):
    """The weights are constants of the loss on every backend, the reference included."""
    w = torch.rand(4, requires_grad=True)
    vr = torch.randn(4, requires_grad=True)
    discriminator_loss(vr, torch.zeros(4), real_weights=w, impl=impl).backward()
    assert w.grad is None and vr.grad is not None


@pytest.mark.parametrize("impl", IMPLS)
def test_relativistic_generator_uses_real_out(impl):
    vr, vg = outputs("relativistic", seed=4)
    vr.requires_grad_(True)
    got = generator_loss(vg, "relativistic", real_out=vr, impl=impl)
    (g,) = torch.autograd.grad(got, vr)
    want = textbook("relativistic", "generator", vr, vg)
    (w,) = torch.autograd.grad(want, vr)
    torch.testing.assert_close(g.double(), w.double(), rtol=RTOL, atol=ATOL)


def test_non_relativistic_generator_ignores_real_out():
    vr, vg = outputs("hinge", seed=5)
    vr.requires_grad_(True)
    vg.requires_grad_(True)
    loss = generator_loss(vg, "hinge", real_out=vr, impl="ref")
    assert torch.autograd.grad(loss, vr, allow_unused=True) == (None,)


def test_float64_outputs_give_a_float64_loss():
    vr, vg = outputs("nonsaturating", seed=6)
    loss = discriminator_loss(vr.double(), vg.double(), impl="ref")
    assert loss.dtype == torch.float64
    torch.testing.assert_close(loss, textbook("nonsaturating", "critic", vr, vg))


def test_defaults_are_the_nonsaturating_gan():
    vr, vg = outputs("nonsaturating", seed=7)
    torch.testing.assert_close(
        discriminator_loss(vr, vg, impl="ref").double(), textbook("nonsaturating", "critic", vr, vg)
    )
    torch.testing.assert_close(
        generator_loss(vg, impl="ref").double(), textbook("nonsaturating", "generator", None, vg)
    )


def test_loss_kinds_exported():
    assert gankernels.LOSS_KINDS == LOSS_KINDS
    assert set(LOSS_KINDS) == {
        "minimax",
        "nonsaturating",
        "wasserstein",
        "hinge",
        "least_squares",
        "relativistic",
        *F_DIVS,
    }
    for name in ("discriminator_loss", "generator_loss", "LOSS_KINDS"):
        assert name in gankernels.__all__


def test_docstrings_state_each_kind():
    for fn in (discriminator_loss, generator_loss):
        for kind in (
            "minimax",
            "nonsaturating",
            "wasserstein",
            "hinge",
            "least_squares",
            "relativistic",
            "f-divergence",
        ):
            assert kind in fn.__doc__, (fn.__name__, kind)


# --- bad input ----------------------------------------------------------------------------------


def test_relativistic_generator_without_real_out_is_an_error():
    with pytest.raises(
        ValueError,
        match=r"generator_loss: kind 'relativistic' compares the "
        r"critic's outputs on fake and real samples, so it needs "
        r"real_out; got None",
    ):
        generator_loss(torch.zeros(4), "relativistic", impl="ref")


def test_unknown_kind_is_an_error():
    with pytest.raises(
        ValueError,
        match=r"discriminator_loss: unknown kind 'wgan'; expected one "
        r"of: minimax, nonsaturating",
    ):
        discriminator_loss(torch.zeros(4), torch.zeros(4), "wgan", impl="ref")
    with pytest.raises(ValueError, match=r"generator_loss: unknown kind 'lsgan'"):
        generator_loss(torch.zeros(4), "lsgan", impl="ref")


def test_unknown_params_are_rejected_by_name():
    with pytest.raises(
        TypeError,
        match=r"discriminator_loss: unknown parameter\(s\) margin for "
        r"kind 'wasserstein'; it takes no parameters",
    ):
        discriminator_loss(torch.zeros(4), torch.zeros(4), "wasserstein", margin=2.0, impl="ref")
    with pytest.raises(
        TypeError,
        match=r"unknown parameter\(s\) d, e for kind 'least_squares'; "
        r"it takes a, b, c, labels",
    ):
        discriminator_loss(torch.zeros(4), torch.zeros(4), "least_squares", d=1, e=2, impl="ref")
    with pytest.raises(
        TypeError,
        match=r"generator_loss: unknown parameter\(s\) a for kind 'kl'; "
        r"it takes nonsaturating",
    ):
        generator_loss(torch.zeros(4), "kl", a=1.0, impl="ref")
    with pytest.raises(
        TypeError,
        match=r"discriminator_loss: unknown parameter\(s\) "
        r"nonsaturating for kind 'kl'",
    ):
        discriminator_loss(torch.zeros(4), torch.zeros(4), "kl", nonsaturating=True, impl="ref")


def test_bad_param_values_are_errors():
    with pytest.raises(TypeError, match=r"discriminator_loss: a must be a number, got 'x'"):
        discriminator_loss(torch.zeros(4), torch.zeros(4), "least_squares", a="x", impl="ref")
    with pytest.raises(TypeError, match=r"generator_loss: nonsaturating must be a bool, got 1"):
        generator_loss(torch.zeros(4), "kl", nonsaturating=1, impl="ref")


def test_non_tensor_outputs_are_errors():
    with pytest.raises(
        TypeError,
        match=r"discriminator_loss: real_out must be a torch.Tensor of "
        r"critic outputs, got NoneType",
    ):
        discriminator_loss(None, torch.zeros(4), impl="ref")
    with pytest.raises(TypeError, match=r"generator_loss: fake_out must be a torch.Tensor"):
        generator_loss([0.0], impl="ref")


def test_mismatched_outputs_are_errors():
    with pytest.raises(ValueError, match=r"fake_out must be on the same device as real_out"):
        discriminator_loss(torch.zeros(4), torch.zeros(4, device="meta"), impl="ref")
    with pytest.raises(TypeError, match=r"fake_out must have the same dtype as real_out"):
        discriminator_loss(torch.zeros(4), torch.zeros(4).double(), impl="ref")
    with pytest.raises(ValueError, match=r"fake_out is empty"):
        generator_loss(torch.zeros(0), impl="ref")
