"""Gradient penalties under mixed precision: autocast, GradScaler, and half-precision norms.

The recipe is PyTorch's ("Automatic Mixed Precision examples", Gradient penalty): scale the
critic output before autograd.grad, unscale before the norm. gankernels unscales inside the
fused norm (inv_scale) while accumulating in float32.
"""

from __future__ import annotations

import pytest
import torch
from conftest import HAS_GPU, device_for
from torch import nn

from gankernels import gradient_penalty, norm_penalty, r1_penalty
from gankernels.testing import tolerance

IMPLS = ("ref", "cpu")


pytestmark = pytest.mark.usefixtures("one_thread")


def critic(seed=0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(64, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1))
    with torch.no_grad():  # norms around 3, so (n - 1)^2 is not dominated by cancellation
        net[0].weight.mul_(4.0)
    return net


def data(seed=1, batch=32):
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, 64, generator=gen),
        torch.randn(batch, 64, generator=gen) + 1,
        torch.rand(batch, generator=gen),
    )


@pytest.mark.parametrize("impl", IMPLS)
def test_bfloat16_autocast_matches_float32(impl):
    D = critic()
    real, fake, eps = data()
    want, want_norms = gradient_penalty(D, real, fake, eps=eps, impl=impl, return_norms=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, norms = gradient_penalty(D, real, fake, eps=eps, impl=impl, return_norms=True)
        assert D(real).dtype == torch.bfloat16, "autocast did not reach the critic"
    assert got.dtype == torch.float32 and norms.dtype == torch.float32
    rtol, atol = tolerance(torch.bfloat16)
    torch.testing.assert_close(norms, want_norms, rtol=rtol, atol=atol)
    torch.testing.assert_close(got, want, rtol=2 * rtol, atol=atol)


@pytest.mark.parametrize("impl", IMPLS)
def test_float16_autocast_with_grad_scaler_matches_float32(impl):
    D = critic()
    real, fake, eps = data()
    want = gradient_penalty(D, real, fake, eps=eps, impl=impl)
    want_grads = torch.autograd.grad(
        want, list(D.parameters()), allow_unused=True, materialize_grads=True
    )

    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    with torch.autocast("cpu", dtype=torch.float16):
        got, norms = gradient_penalty(
            D, real, fake, eps=eps, scaler=scaler, impl=impl, return_norms=True
        )
    assert got.dtype == torch.float32 and norms.dtype == torch.float32
    rtol, atol = tolerance(torch.float16)
    torch.testing.assert_close(got, want, rtol=4 * rtol, atol=atol)
    # the penalty itself is unscaled: it is added to the loss, and the whole loss is scaled
    scaled = torch.autograd.grad(
        scaler.scale(got), list(D.parameters()), allow_unused=True, materialize_grads=True
    )
    inv = 1.0 / scaler.get_scale()
    for g, w in zip(scaled, want_grads):
        assert torch.isfinite(g).all()
        torch.testing.assert_close(g * inv, w, rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize("impl", ("cuda", "triton"))
def test_float16_autocast_on_gpu_with_grad_scaler(impl):
    if not HAS_GPU:
        pytest.skip("no CUDA GPU on this machine: float16 autocast is checked on GPU only")
    device = device_for(impl)
    D = critic().to(device)
    real, fake, eps = (t.to(device) for t in data())
    want = gradient_penalty(D, real, fake, eps=eps, impl=impl)
    scaler = torch.amp.GradScaler("cuda", init_scale=2.0**10)
    with torch.autocast("cuda", dtype=torch.float16):
        got, norms = gradient_penalty(
            D, real, fake, eps=eps, scaler=scaler, impl=impl, return_norms=True
        )
        assert D(real).dtype == torch.float16
    assert norms.dtype == torch.float32
    rtol, atol = tolerance(torch.float16)
    torch.testing.assert_close(got, want, rtol=4 * rtol, atol=atol)


def test_scaler_scale_is_read_once():
    """Reading the scale is a host synchronisation: once per call."""

    class CountingScaler(torch.amp.GradScaler):
        reads = 0

        def get_scale(self):
            CountingScaler.reads += 1
            return super().get_scale()

    D = critic()
    real, fake, eps = data()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gradient_penalty(D, real, fake, eps=eps, scaler=CountingScaler("cpu"), impl="ref")
    assert CountingScaler.reads == 1


@pytest.mark.parametrize("impl", IMPLS)
def test_naive_half_norm_of_scaled_grads_overflows_ours_does_not(impl):
    """float16 gradients scaled by a GradScaler's 2^16, per-sample norm ~1 spread over 1024
    elements: every element fits in float16 (~2048), but the scaled norm (~65536) does not
    (max 65504), so the naive recipe, the norm in float16 then unscaled, is inf. The fused norm
    accumulates in float32 and unscales in the same pass."""
    scale = 2.0**16
    gen = torch.Generator().manual_seed(2)
    true = torch.randn(8, 1024, generator=gen, dtype=torch.float64)
    true = (
        true
        / true.norm(dim=1, keepdim=True)
        * torch.linspace(0.9, 1.1, 8, dtype=torch.float64)[:, None]
    )
    scaled = (true * scale).to(torch.float16)
    assert torch.isfinite(scaled).all()

    naive_norms = scaled.norm(2, dim=1) * (1 / scale)
    naive = 10 * ((naive_norms - 1) ** 2).mean()
    assert torch.isinf(naive_norms).any() and not torch.isfinite(naive)
    also_naive = scaled.pow(2).sum(1).sqrt() * (1 / scale)
    assert torch.isinf(also_naive).all()

    penalty, norms = norm_penalty(scaled, 1.0, 10.0, False, 1 / scale, impl=impl)
    assert torch.isfinite(penalty) and torch.isfinite(norms).all()
    exact_norms = (scaled.double() / scale).norm(dim=1)
    torch.testing.assert_close(norms.double(), exact_norms, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        penalty.double(), 10 * ((exact_norms - 1) ** 2).mean(), rtol=1e-4, atol=1e-6
    )
    # and its gradient is finite too (the backward unscales by inv_scale^2 in float32)
    scaled.requires_grad_(True)
    (grad,) = torch.autograd.grad(
        norm_penalty(scaled, 1.0, 10.0, False, 1 / scale, impl=impl)[0], scaled
    )
    assert grad.dtype == torch.float16 and torch.isfinite(grad).all()


def test_scaler_without_autocast_is_an_error():
    D = critic()
    real, fake, eps = data()
    scaler = torch.amp.GradScaler("cpu")
    with pytest.raises(
        RuntimeError,
        match=r"gradient_penalty: scaler is an enabled GradScaler "
        r"but autocast is not enabled for device type 'cpu'",
    ):
        gradient_penalty(D, real, fake, eps=eps, scaler=scaler, impl="ref")
    with pytest.raises(RuntimeError, match=r"r1_penalty: scaler is an enabled GradScaler"):
        r1_penalty(D, real, scaler=scaler, impl="ref")


def test_disabled_scaler_is_no_scaler():
    D = critic()
    real, fake, eps = data()
    off = torch.amp.GradScaler("cpu", enabled=False)
    torch.testing.assert_close(
        gradient_penalty(D, real, fake, eps=eps, scaler=off, impl="ref"),
        gradient_penalty(D, real, fake, eps=eps, impl="ref"),
    )


def test_scaler_of_the_wrong_type_is_an_error():
    D = critic()
    real, fake, eps = data()
    with pytest.raises(
        TypeError,
        match=r"scaler must be a torch.amp.GradScaler \(or None\), "
        r"got float",
    ):
        gradient_penalty(D, real, fake, eps=eps, scaler=65536.0, impl="ref")
