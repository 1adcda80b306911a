"""Whole critic steps to time: WGAN-GP and WGAN (weight clipping), each as the reference code
writes it ("textbook") and on gankernels' fused API ("gankernels-<backend>")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ._cases import CLIP_C
from ._critics import batch_of, critic
from ._measure import synchronizer


@dataclass
class Step:
    """A critic step to time, and the tensors alive across steps (parameters, the batch)."""

    run: Callable[[], None]
    persistent: list[torch.Tensor]


def wgan_gp_step(impl: str, model: str, batch: int, device: str) -> Step:
    """One WGAN-GP critic step (Adam 1e-4, betas (0.5, 0.9); lambda 0.1 for the toy MLP as in
    gan_toy.py, 10 for images). impl "textbook" is the eager step as the WGAN-GP reference
    code writes it; any other impl is the same step on gankernels' fused API."""
    sync = synchronizer(device)
    netD = critic(model, device)
    opt = torch.optim.Adam(netD.parameters(), lr=1e-4, betas=(0.5, 0.9))
    real = batch_of(model, batch, device, seed=1)
    fake = batch_of(model, batch, device, seed=2)  # G(z).detach(): the generator is not timed
    lam = 0.1 if model == "mlp3x512" else 10.0
    if impl == "textbook":
        one = torch.tensor(1.0, device=device)
        mone = -one

        def run() -> None:
            netD.zero_grad()
            d_real = netD(real).mean()
            d_real.backward(mone)
            d_fake = netD(fake).mean()
            d_fake.backward(one)
            alpha = torch.rand(batch, *([1] * (real.dim() - 1)), device=device)
            alpha = alpha.expand(real.size())
            interpolates = alpha * real + (1 - alpha) * fake
            interpolates.requires_grad_(True)
            disc_interpolates = netD(interpolates)
            gradients = torch.autograd.grad(
                outputs=disc_interpolates,
                inputs=interpolates,
                grad_outputs=torch.ones(disc_interpolates.size(), device=device),
                create_graph=True,
                retain_graph=True,
                only_inputs=True,
            )[0]
            gradients = gradients.view(gradients.size(0), -1)
            gradient_penalty = ((gradients.norm(2, dim=1) - 1) ** 2).mean() * lam
            gradient_penalty.backward()
            opt.step()
            sync()

        return Step(run, [*netD.parameters(), real, fake])

    import gankernels

    backend = _api_backend(impl)

    def run() -> None:
        netD.zero_grad()
        loss = gankernels.discriminator_loss(
            netD(real), netD(fake), kind="wasserstein", impl=backend
        )
        penalty = gankernels.gradient_penalty(netD, real, fake, weight=lam, impl=backend)
        (loss + penalty).backward()
        opt.step()
        sync()

    return Step(run, [*netD.parameters(), real, fake])


def wgan_clip_step(impl: str, model: str, batch: int, device: str) -> Step:
    """One WGAN critic step (RMSprop 5e-5, c = 0.01): clip, then E[D(fake)] - E[D(real)].
    impl "textbook" clips with the per-parameter loop of the WGAN reference code; any other
    impl clips with gankernels.clip_weights_ on that backend."""
    sync = synchronizer(device)
    netD = critic(model, device)
    opt = torch.optim.RMSprop(netD.parameters(), lr=5e-5)
    real = batch_of(model, batch, device, seed=1)
    fake = batch_of(model, batch, device, seed=2)
    one = torch.tensor(1.0, device=device)
    mone = -one
    if impl == "textbook":

        def clip() -> None:
            for p in netD.parameters():
                p.data.clamp_(-CLIP_C, CLIP_C)
    else:
        import gankernels

        backend = _api_backend(impl)

        def clip() -> None:
            gankernels.clip_weights_(netD, CLIP_C, impl=backend)

    def run() -> None:
        clip()
        netD.zero_grad()
        netD(real).mean().backward(mone)
        netD(fake).mean().backward(one)
        opt.step()
        sync()

    return Step(run, [*netD.parameters(), real, fake])


def _api_backend(impl: str) -> str:
    prefix = "gankernels-"
    if not impl.startswith(prefix):
        raise ValueError(f"a gankernels step impl is 'gankernels-<backend>', got {impl!r}")
    return impl[len(prefix) :]
