"""Whole critic steps, float32: the textbook eager step against the same step on gankernels.

- WGAN-GP: the critic step as the WGAN-GP reference code writes it (alpha per sample,
  interpolates.requires_grad_, autograd.grad(create_graph=True), ((g.norm(2, dim=1) - 1)**2)
  .mean() * LAMBDA, three backward calls, Adam) against discriminator_loss("wasserstein") +
  gankernels.gradient_penalty, for the toy 3x512 MLP (B = 256) and a DCGAN-32 critic (B = 64).
- WGAN: clip, then E[D(fake)] - E[D(real)], RMSprop, with the per-parameter clamp_ loop against
  gankernels.clip_weights_.

torch.compile is not measured here: it does not support the double backward of the penalty.
"""

from __future__ import annotations

import pytest
import torch

from bench import _cases, _critics, _measure, _steps

DEVICE = _cases.bench_device()
KINDS = {"wgan-gp step": _steps.wgan_gp_step, "wgan clip step": _steps.wgan_clip_step}


def impls() -> list[str]:
    return ["textbook", *[f"gankernels-{b}" for b in _cases.fused_backends(DEVICE)]]


def pytest_generate_tests(metafunc) -> None:
    if "step" in metafunc.fixturenames:
        sset = _cases.size_set(DEVICE, _cases.quick_mode(metafunc.config))
        params = []
        for kind, table in (
            ("wgan-gp step", _cases.GP_STEPS),
            ("wgan clip step", _cases.CLIP_STEPS),
        ):
            params += [
                ((kind, model, batch), impl) for model, batch in table[sset] for impl in impls()
            ]
        ids = [f"{k.replace(' ', '-')}-{m}-B{b}-{i}" for (k, m, b), i in params]
        metafunc.parametrize("step,impl", params, ids=ids)


def test_step(measure, step, impl) -> None:
    kind, model, batch = step
    built = KINDS[kind](impl, model, batch, DEVICE)
    built.run()  # the first step allocates the optimiser state: not what a step keeps
    saved = _measure.saved_bytes(built.run, exclude=built.persistent)
    peak = _measure.peak_bytes(built.run, DEVICE)
    measure(
        built.run,
        op=kind,
        size=f"{model} B={batch}",
        dtype="float32",
        impl=impl,
        role="baseline" if impl == "textbook" else "",
        saved_bytes=saved,
        peak_bytes=peak,
        warmed=True,
    )


@pytest.mark.parametrize("impl", _cases.fused_backends(DEVICE))
@pytest.mark.parametrize("model,batch", [("mlp3x512", 256), ("dcgan32", 64)])
def test_gp_step_matches_textbook(model, batch, impl) -> None:
    """The timed gankernels step computes the textbook step: with the same alpha, the same
    penalty and the same critic gradients (float32 tolerance)."""
    import gankernels

    netD = _critics.critic(model, DEVICE)
    real = _critics.batch_of(model, batch, DEVICE, seed=1)
    fake = _critics.batch_of(model, batch, DEVICE, seed=2)
    alpha = torch.rand(batch, generator=torch.Generator().manual_seed(3)).to(DEVICE)
    shaped = alpha.reshape(batch, *([1] * (real.dim() - 1))).expand(real.size())
    interpolates = (shaped * real + (1 - shaped) * fake).requires_grad_(True)
    out = netD(interpolates)
    (g,) = torch.autograd.grad(out, interpolates, torch.ones_like(out), create_graph=True)
    want = ((g.view(batch, -1).norm(2, dim=1) - 1) ** 2).mean() * 10.0
    # The last bias never reaches the input gradient: its penalty gradient is zero.
    want_grads = torch.autograd.grad(want, list(netD.parameters()), materialize_grads=True)
    got = gankernels.gradient_penalty(netD, real, fake, weight=10.0, eps=alpha, impl=impl)
    got_grads = torch.autograd.grad(got, list(netD.parameters()), materialize_grads=True)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    for a, b in zip(got_grads, want_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
