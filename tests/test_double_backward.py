"""The whole WGAN-GP critic step, where the norm penalty sits inside a double backward.

    x_hat = gp_interpolate(real, fake, eps)
    g     = autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    P, n  = norm_penalty(g, target, weight)
    (D(fake).mean() - D(real).mean() + P).backward()

run once with a backend's fused ops and once with gankernels.reference, from identical critics:
every parameter gradient (and the gradients reaching fake and eps, which come back through
gp_interpolate's fused backward) must agree. R1 (target 0 on real samples, no interpolation) the
same way, and a sample whose input gradient is exactly zero must give finite gradients.
"""

from __future__ import annotations

import copy
from typing import Callable, Optional

import pytest
import torch
from torch import nn

from gankernels import reference
from gankernels.ops import gp_interpolate, norm_penalty
from gankernels.testing import assert_close, make, op_qualname, ops_run

DTYPES = (torch.float32, torch.float64)


def mlp_critic(features: int) -> nn.Module:
    # Smooth activations: their second derivatives are not zero, so the double backward through
    # the critic is exercised in full (a ReLU critic's would vanish).
    return nn.Sequential(
        nn.Linear(features, 32), nn.Tanh(), nn.Linear(32, 32), nn.Softplus(), nn.Linear(32, 1)
    )


def conv_critic() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.Tanh(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.Softplus(),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 1),
    )


class MaskedCritic(nn.Module):
    """D(x)_i = mask_i * inner(x)_i: a zero mask entry makes sample i's input gradient all zero."""

    def __init__(self, inner: nn.Module, mask: torch.Tensor) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) * self.mask.view(-1, 1)


def ops_for(impl: Optional[str]) -> tuple[Callable, Callable]:
    """(interpolate, penalty) of a backend, or the reference's for impl=None."""
    if impl is None:
        return reference.gp_interpolate, reference.norm_penalty

    def interpolate(real, fake, eps):
        return gp_interpolate(real, fake, eps, impl=impl)

    def penalty(g, *params):
        return norm_penalty(g, *params, impl=impl)

    return interpolate, penalty


def wgan_gp_step(critic, real, fake, eps, impl, target=1.0, weight=10.0, scale=1.0):
    """One critic step; `scale` multiplies D before the input gradient, as a GradScaler does, and
    the penalty unscales it with inv_scale = 1 / scale. Returns (loss, norms, input gradient)."""
    interpolate, penalty = ops_for(impl)
    x_hat = interpolate(real, fake, eps)
    if not x_hat.requires_grad:
        x_hat.requires_grad_()
    (g,) = torch.autograd.grad(critic(x_hat).sum() * scale, x_hat, create_graph=True)
    loss_gp, norms = penalty(g, target, weight, False, 1.0 / scale)
    loss = critic(fake).mean() - critic(real).mean() + loss_gp
    loss.backward()
    return loss.detach(), norms.detach(), g.detach()


def make_batch(shape, dtype, device, *, channels_last=False):
    real = make(shape, dtype, device, seed=1)
    fake = make(shape, dtype, device, seed=2)
    if channels_last:
        real = real.contiguous(memory_format=torch.channels_last)
        fake = fake.contiguous(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(3)
    eps = torch.rand(shape[0], generator=gen, dtype=dtype).to(device)
    return real, fake, eps


def run_both(backend, critic, real, fake, eps, step, **kwargs):
    """Runs `step` with the backend and with the reference on copies of everything; compares the
    results and every gradient; returns the backend's outputs and the ops that ran."""
    results = {}
    for impl in (backend, None):
        c = copy.deepcopy(critic)
        r = real.clone()
        f = fake.clone().requires_grad_()
        e = eps.clone().requires_grad_()
        names = set()
        if impl is None:
            out = step(c, r, f, e, impl, **kwargs)
        else:

            def call(c=c, r=r, f=f, e=e, impl=impl):
                results["fused_out"] = step(c, r, f, e, impl, **kwargs)

            names = ops_run(call)
            out = results.pop("fused_out")
        results[impl] = (c, f, e, out, names)
    dtype = real.dtype
    c1, f1, e1, out1, names = results[backend]
    c2, f2, e2, out2, _ = results[None]
    for what, a, b in zip(("loss", "norms", "input gradient"), out1, out2, strict=True):
        assert_close(a, b, dtype, label=f"{backend} {what}")
    params = zip(c1.named_parameters(), c2.named_parameters(), strict=True)
    for (name, p1), (_, p2) in params:
        assert p1.grad is not None, name
        assert torch.isfinite(p1.grad).all(), f"{backend}: {name}.grad is not finite"
        assert_close(p1.grad, p2.grad, dtype, label=f"{backend} {name}.grad")
    for name, a, b in (("fake", f1, f2), ("eps", e1, e2)):
        if b.grad is not None:
            assert_close(a.grad, b.grad, dtype, label=f"{backend} {name}.grad")
    return out1, names


def assert_fused_ops_ran(names, backend, ops):
    for op in ops:
        assert op_qualname(op, backend) in names, f"{op} of {backend} did not run: {names}"


GP_OPS = ("gp_interpolate", "gp_interpolate_backward", "norm_penalty", "norm_penalty_backward")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("scale", (1.0, 1024.0), ids=("unscaled", "amp_scaled"))
def test_wgan_gp_mlp_critic(backend, device, dtype, scale):
    torch.manual_seed(0)
    critic = mlp_critic(8).to(device, dtype)
    real, fake, eps = make_batch((16, 8), dtype, device)
    _, names = run_both(backend, critic, real, fake, eps, wgan_gp_step, scale=scale)
    assert_fused_ops_ran(names, backend, GP_OPS)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_wgan_gp_conv_critic_channels_last(backend, device, dtype):
    torch.manual_seed(0)
    critic = conv_critic().to(device, dtype).to(memory_format=torch.channels_last)
    real, fake, eps = make_batch((6, 3, 8, 8), dtype, device, channels_last=True)
    (_, _, g), names = run_both(backend, critic, real, fake, eps, wgan_gp_step)
    # The penalty really saw a channels_last gradient.
    assert g.is_contiguous(memory_format=torch.channels_last) and not g.is_contiguous()
    assert_fused_ops_ran(names, backend, GP_OPS)


def r1_step(critic, real, fake, eps, impl, gamma=10.0):
    """Non-saturating critic loss with the R1 penalty gamma / 2 * E||grad_x D(x_real)||^2."""
    _, penalty = ops_for(impl)
    real = real.detach().requires_grad_()
    out = critic(real)
    (g,) = torch.autograd.grad(out.sum(), real, create_graph=True)
    loss_r1, norms = penalty(g, 0.0, gamma / 2, False, 1.0)
    loss = nn.functional.softplus(-out).mean() + nn.functional.softplus(critic(fake)).mean()
    (loss + loss_r1).backward()
    return loss_r1.detach(), norms.detach(), g.detach()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_r1_penalty(backend, device, dtype):
    torch.manual_seed(0)
    critic = conv_critic().to(device, dtype).to(memory_format=torch.channels_last)
    real, fake, eps = make_batch((5, 3, 8, 8), dtype, device, channels_last=True)
    _, names = run_both(backend, critic, real, fake, eps, r1_step)
    assert_fused_ops_ran(names, backend, ("norm_penalty", "norm_penalty_backward"))


@pytest.mark.parametrize("target", (1.0, 0.0))
def test_zero_gradient_row_gives_finite_gradients(backend, device, target):
    """Sample 0's critic output is multiplied by 0, so its input gradient row is exactly zero:
    its norm is 0 and 1 / n would be inf; the fused backward must give 0 there, not NaN."""
    torch.manual_seed(0)
    mask = torch.tensor([0.0, 1.0, 1.0, 1.0], device=device)
    critic = MaskedCritic(mlp_critic(8), mask).to(device)
    real, fake, eps = make_batch((4, 8), torch.float32, device)
    (_, norms, g), names = run_both(backend, critic, real, fake, eps, wgan_gp_step, target=target)
    assert torch.equal(g[0], torch.zeros_like(g[0])) and norms[0] == 0 and (norms[1:] > 0).all()
    assert_fused_ops_ran(names, backend, GP_OPS)
