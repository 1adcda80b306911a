"""adversarial_loss's edge cases on every fused backend against gankernels.reference: real and
fake outputs of different sizes, any strides, upstream gradients, extreme logits, float32
accuracy, NaN and Inf, property tests.

Each test takes the `backend` fixture ("cpu", "cuda", "triton") and calls the public function
with `impl=<backend>` (which never falls back). The contract every op keeps (the sample sweep
over dtypes, opcheck, torch.compile, gradcheck, bad input, determinism, which backend ran) is in
tests/test_op_contract.py.
"""

from __future__ import annotations

import math
from typing import Optional

import pytest
import torch
from conftest import BACKENDS, device_for
from hypothesis import given, settings
from hypothesis import strategies as st

import gankernels
from gankernels import reference
from gankernels.ops.registry import backend_op
from gankernels.reference import ROLES
from gankernels.testing import (
    DTYPES,
    adversarial_args,
    adversarial_variants,
    direct_op,
    make,
    needs_real,
    tolerance,
)

OP = "adversarial_loss"
UPSTREAM = 0.7  # an upstream gradient other than 1 catches a backward that ignores grad_loss


VARIANTS = adversarial_variants()
LS_LABELS = ((-1.0, 1.0, 0.0), (0.0, 1.0, 1.0), (0.3, -0.4, 2.5))


def leaf(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """A fresh leaf sharing t's memory and strides (layout tests rely on the strides)."""
    return None if t is None else t.detach().requires_grad_()


def grad_or_zeros(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    if t is None:
        return None
    return t.grad if t.grad is not None else torch.zeros_like(t)


def loss_and_grads(fn, real, fake, args, upstream: float = UPSTREAM):
    """(loss, grad_real, grad_fake) of fn(real, fake, *args) with an upstream gradient."""
    r, f = leaf(real), leaf(fake)
    loss = fn(r, f, *args)
    loss.backward(torch.tensor(upstream, dtype=loss.dtype, device=loss.device))
    return loss.detach(), grad_or_zeros(r), grad_or_zeros(f)


def fused(backend: str):
    return lambda r, f, *args: gankernels.adversarial_loss(r, f, *args, impl=backend)


def assert_matches_reference(backend, real, fake, args, dtype, label="", upstream=UPSTREAM):
    rtol, atol = tolerance(dtype)
    got = loss_and_grads(fused(backend), real, fake, args, upstream)
    want = loss_and_grads(reference.adversarial_loss, real, fake, args, upstream)
    for name, g, w in zip(("loss", "grad_real", "grad_fake"), got, want):
        if w is None:
            assert g is None, f"{label}: {name} should be None"
            continue
        assert g.dtype == w.dtype, f"{label}: {name} dtype {g.dtype} != {w.dtype}"
        torch.testing.assert_close(
            g,
            w,
            rtol=rtol,
            atol=atol,
            equal_nan=True,
            msg=lambda m, n=name: f"{backend} {label} {n}: {m}",
        )
    return got


# --- correctness against the reference --------------------------------------------------------


@pytest.mark.parametrize("kind,role,ns", VARIANTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_kind_role_with_real_and_fake_of_different_sizes(backend, dtype, kind, role, ns):
    """v_r and v_g with different element counts (each term is its own mean), with and without
    v_r where the loss allows it, for every least-squares label set."""
    device = device_for(backend)
    real = make((37,), dtype, device, seed=1, scale=1.5)
    fake = make((5, 3, 2), dtype, device, seed=2, scale=1.5)
    labels = LS_LABELS if kind == "least_squares" else LS_LABELS[:1]
    for a, b, c in labels:
        args = (kind, role, a, b, c, ns)
        assert_matches_reference(backend, real, fake, args, dtype, f"{kind}-{role}-ns{ns}")
        if not needs_real(kind, role):
            assert_matches_reference(backend, None, fake, args, dtype, f"{kind}-{role}-noreal")


@pytest.mark.parametrize("layout", ("noncontiguous", "expanded", "channels_last", "transposed"))
def test_any_strides(backend, layout):
    """Strided, stride-0 and permuted outputs give the reference's answer, and the gradients
    come back with the layout of their input (as the fake kernel promises)."""
    device = device_for(backend)
    shape = (4, 3, 5, 2)
    if layout == "transposed":
        real = make((2, 5, 3, 4), torch.float32, device, seed=3).permute(3, 2, 1, 0)
    else:
        real = make(shape, torch.float32, device, seed=3, layout=layout)
    fake = make(shape, torch.float32, device, seed=4, layout="noncontiguous")
    for kind in ("relativistic", "hinge", "kl"):
        args = adversarial_args(kind, "critic", -1.0, 1.0, 0.0, False)
        assert_matches_reference(backend, real, fake, args, torch.float32, layout)
        grad_real, grad_fake = backward_op(backend)(
            torch.tensor(1.0, device=device), real, fake, *args
        )
        assert grad_real.shape == real.shape and grad_fake.shape == fake.shape
        assert grad_real.stride() == torch.empty_like(real).stride()
        assert grad_fake.stride() == torch.empty_like(fake).stride()


def test_relativistic_generator_reads_both_outputs(backend):
    """RaGAN's generator loss depends on v_r: its gradient is non-zero and matches."""
    device = device_for(backend)
    real = make((33,), torch.float64, device, seed=5)
    fake = make((19,), torch.float64, device, seed=6)
    _, grad_real, grad_fake = assert_matches_reference(
        backend,
        real,
        fake,
        adversarial_args("relativistic", "generator", -1.0, 1.0, 0.0, False),
        torch.float64,
    )
    assert grad_real.abs().sum() > 0
    assert grad_fake.abs().sum() > 0


@pytest.mark.parametrize("upstream", (0.0, -3.5, 1e3))
def test_upstream_gradient_scales_the_gradients(backend, upstream):
    device = device_for(backend)
    real = make((50,), torch.float32, device, seed=7)
    fake = make((40,), torch.float32, device, seed=8)
    for kind, role, ns in VARIANTS:
        assert_matches_reference(
            backend,
            real,
            fake,
            adversarial_args(kind, role, -1.0, 1.0, 0.0, ns),
            torch.float32,
            f"{kind}-{role}",
            upstream=upstream,
        )


def backward_op(backend: str):
    """The backend's backward op itself (the Triton one is registered on first use)."""
    backend_op(OP, backend)
    return direct_op(f"{OP}_backward", backend)


def test_backward_op_reads_grad_loss_from_a_tensor(backend):
    """The backward op called directly with a 0-dim grad_loss tensor (no host scalar)."""
    device = device_for(backend)
    backward = backward_op(backend)
    real = make((21,), torch.float32, device, seed=9)
    fake = make((12,), torch.float32, device, seed=10)
    grad_loss = torch.tensor(-2.25, device=device)
    for kind, role, ns in VARIANTS:
        args = adversarial_args(kind, role, -1.0, 1.0, 0.0, ns)
        gr, gf = backward(grad_loss, real, fake, *args)
        _, wr, wf = loss_and_grads(reference.adversarial_loss, real, fake, args, -2.25)
        torch.testing.assert_close(gf, wf, msg=lambda m, k=kind, r=role: f"{k} {r}: {m}")
        torch.testing.assert_close(gr, wr, msg=lambda m, k=kind, r=role: f"{k} {r}: {m}")


def test_no_real_gives_an_empty_grad_real_from_the_backward_op():
    device = device_for("cpu")
    fake = make((9,), torch.float32, device, seed=11)
    grad_real, grad_fake = torch.ops.gankernels.adversarial_loss_backward(
        torch.tensor(1.0), None, fake, *adversarial_args("hinge", "generator")
    )
    assert grad_real.shape == (0,)
    torch.testing.assert_close(grad_fake, torch.full_like(fake, -1 / 9))


# --- numerical stability ----------------------------------------------------------------------


EXTREME = (80.0, -80.0, 1e4, -1e4, 0.5, -2.0)


@pytest.mark.parametrize("kind,role,ns", VARIANTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_extreme_logits_stay_finite_where_the_math_is(backend, dtype, kind, role, ns):
    """|v| = 80 and 1e4: softplus, sigmoid and the f-GAN composites must not overflow where the
    exact value is finite (checked in float64 and against the dtype's range), and agree with the
    reference (infinities and NaN of inf - inf included)."""
    device = device_for(backend)
    real = torch.tensor(EXTREME, dtype=dtype, device=device)
    fake = torch.tensor(EXTREME[::-1] + (3.0,), dtype=dtype, device=device)
    args = adversarial_args(kind, role, -1.0, 1.0, 0.0, ns)
    got = assert_matches_reference(backend, real, fake, args, dtype, f"{kind}-{role}-ns{ns}")
    exact = loss_and_grads(reference.adversarial_loss, real.double(), fake.double(), args)
    limit = torch.finfo(dtype).max
    for name, g, e in zip(("loss", "grad_real", "grad_fake"), got, exact):
        representable = torch.isfinite(e) & (e.abs() <= limit)
        bad = representable & ~torch.isfinite(g.to(e.dtype))
        assert not bad.any(), f"{name} not finite where the math is: {g} vs exact {e}"


def test_softplus_kinds_are_finite_at_huge_logits(backend):
    """The bounded-derivative kinds stay finite in every dtype for |v| = 1e4."""
    device = device_for(backend)
    for dtype in DTYPES:
        v = torch.tensor([1e4, -1e4, 80.0, -80.0], dtype=dtype, device=device)
        for kind in (
            "minimax",
            "nonsaturating",
            "relativistic",
            "jensen_shannon",
            "gan",
            "total_variation",
            "hinge",
            "wasserstein",
        ):
            for role in ROLES:
                loss, gr, gf = loss_and_grads(
                    fused(backend),
                    v,
                    v.flip(0),
                    adversarial_args(kind, role, -1.0, 1.0, 0.0, False),
                )
                assert torch.isfinite(loss), (kind, role, dtype, loss)
                assert torch.isfinite(gr).all() and torch.isfinite(gf).all(), (kind, role, dtype)


# Kinds whose F and F' are softplus, sigmoid, exp, expm1 or tanh with no cancellation in the
# formula itself: their float32 results must be as accurate as float32 math allows.
ACCURATE_KINDS = (
    "minimax",
    "nonsaturating",
    "gan",
    "jensen_shannon",
    "kl",
    "reverse_kl",
    "neyman",
    "squared_hellinger",
    "total_variation",
)


@pytest.mark.parametrize("kind,role,ns", [v for v in VARIANTS if v[0] in ACCURATE_KINDS])
def test_float32_is_accurate_elementwise(backend, kind, role, ns):
    """float32 losses, gradients and single terms over a sweep of logits in [-60, 60] (and tiny
    ones) against the exact float64 values, element by element: within a few ulp (rtol 2e-6),
    so a fast exp, expm1, log1p, sigmoid or tanh that loses precision anywhere fails."""
    device = device_for(backend)
    tiny = [s * m for s in (1.0, -1.0) for m in (1e-3, 1e-6, 1e-20)] + [0.0]
    v = torch.cat(
        [
            torch.linspace(-60, 60, 2001, dtype=torch.float64),
            torch.tensor(tiny, dtype=torch.float64),
        ]
    )
    real32, fake32 = v.float().to(device), v.flip(0).float().to(device)
    args = adversarial_args(kind, role, -1.0, 1.0, 0.0, ns)
    got = loss_and_grads(fused(backend), real32, fake32, args)
    exact = loss_and_grads(reference.adversarial_loss, real32.double(), fake32.double(), args)
    # A mean of terms of both signs (-v in KL's) can cancel to 0: the loss may be off by the
    # float32 rounding of its terms' sizes. And tanh(x) is 1 in float32 for |x| > 9, so
    # total_variation's F' = (1 - tanh^2) / 2 is 0 there instead of ~e^(-2|x|): one ulp of 1,
    # scaled by the mean's 1/N.
    atols = {
        "loss": 1e-6 * v.abs().mean().item(),
        "grad": 2**-23 / v.numel() if kind == "total_variation" else 0.0,
    }
    # torch differentiates expm1 as grad * (expm1(v) + 1), which rounds exp(v) away in float64
    # once it is below ~1e-9: there the float64 reference is no longer exact, so the expm1
    # kinds' gradients are compared where |v| < 20 (exp(-20) = 2e-9).
    trusted = 20.0 if kind in ("neyman", "squared_hellinger") else math.inf
    for name, g, e, x in zip(
        ("loss", "grad_real", "grad_fake"), got, exact, (None, real32, fake32)
    ):
        g, e = g.double().cpu(), e.cpu()
        if x is not None:
            keep = x.cpu().abs() < trusted
            g, e = g[keep], e[keep]
        torch.testing.assert_close(
            g,
            e,
            rtol=2e-6,
            atol=atols[name[:4]],
            msg=lambda m, n=name: f"{kind}-{role}-ns{ns} {n}: {m}",
        )
    if role == "generator":
        # The loss above is a mean, which hides one term's error; a generator loss is one term
        # F(v), so one-element calls check every F's value on its own. The reference itself
        # cancels near 0 in neyman's 2 - 2 exp(v / 2), and jensen_shannon's constant -log 2
        # cancels near v = 0: those two get an absolute tolerance at that rounding.
        atol = {"neyman": 1e-15, "jensen_shannon": 1e-7}.get(kind, 0.0)
        for x in (
            torch.cat(
                [
                    torch.linspace(-60, 60, 61, dtype=torch.float64),
                    torch.tensor(tiny, dtype=torch.float64),
                ]
            )
            .float()
            .tolist()
        ):
            one = torch.tensor([x], dtype=torch.float32, device=device)
            got = fused(backend)(None, one, *args)
            want = reference.adversarial_loss(None, one.double(), *args)
            torch.testing.assert_close(
                got.double().cpu(),
                want.cpu(),
                rtol=2e-6,
                atol=atol,
                msg=lambda m, x=x: f"{kind}-generator-ns{ns} F({x}): {m}",
            )


# --- property-based --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=25, deadline=None)
@given(
    variant=st.sampled_from(VARIANTS),
    dtype=st.sampled_from(DTYPES),
    n_real=st.integers(1, 300),
    n_fake=st.integers(1, 300),
    scale=st.floats(0.01, 20.0),
    labels=st.tuples(*(st.floats(-3.0, 3.0),) * 3),
    upstream=st.floats(-4.0, 4.0),
    seed=st.integers(0, 2**16),
    drop_real=st.booleans(),
)
def test_property_matches_reference(
    backend, variant, dtype, n_real, n_fake, scale, labels, upstream, seed, drop_real
):
    kind, role, ns = variant
    device = device_for(backend)
    real = make((n_real,), dtype, device, seed=seed, scale=scale)
    fake = make((n_fake,), dtype, device, seed=seed + 1, scale=scale)
    if drop_real and not needs_real(kind, role):
        real = None
    assert_matches_reference(
        backend, real, fake, (kind, role, *labels, ns), dtype, f"{kind}-{role}-{dtype}", upstream
    )


# --- NaN and Inf --------------------------------------------------------------------------------


def test_nan_and_inf_follow_torch_semantics():
    """NaN in an output propagates to the loss and to that element's gradient only."""
    device_for("cpu")
    real = torch.tensor([0.5, math.nan, -1.0])
    fake = torch.tensor([math.inf, 0.2])
    for kind, role, ns in VARIANTS:
        args = adversarial_args(kind, role, -1.0, 1.0, 0.0, ns)
        got = loss_and_grads(fused("cpu"), real, fake, args)
        want = loss_and_grads(reference.adversarial_loss, real, fake, args)
        for g, w in zip(got, want):
            torch.testing.assert_close(
                g, w, equal_nan=True, msg=lambda m, k=kind, r=role: f"{k} {r}: {m}"
            )
