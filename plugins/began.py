"""BEGAN (Berthelot 2017): the critic is an autoencoder and the losses are its per-sample
reconstruction errors L(x) = mean_j |x_j - D(x)_j|^eta:

    L_D = L(x_r) - k_t L(x_g),      L_G = L(x_g)
    k_{t+1} = clip(k_t + lambda_k (gamma L(x_r) - L(x_g)), 0, 1)     after each critic step
    M = L(x_r) + |gamma L(x_r) - L(x_g)|                             the convergence measure

k_t lives on the device in the variant state (state["k"], a 0-dim tensor), and so does the
balance gamma L(x_r) - L(x_g) of the last critic step: no host synchronisation per step.
Defaults: gamma = 0.5 (diversity ratio), lambda_k = 0.001, eta = 1 (the paper's L1), Adam 1e-4,
betas (0.5, 0.999), one critic step per generator step.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from gankernels.variants import Defaults, Variant

from ._common import (
    check_no_penalty_weight,
    check_variant_options,
    critic_output,
    generate_detached,
)


class BEGAN(Variant):
    """Boundary-equilibrium GAN with an autoencoder critic (critic_kind "autoencoder")."""

    def __init__(self) -> None:
        super().__init__(
            "began",
            "boundary-equilibrium GAN (Berthelot 2017): autoencoder critic, "
            "k_t balances real and fake reconstruction",
            Defaults(
                n_critic=1,
                optimizer="adam",
                lr_critic=1e-4,
                lr_generator=1e-4,
                betas=(0.5, 0.999),
                options={"gamma": 0.5, "lambda_k": 0.001, "eta": 1.0},
            ),
            critic_kind="autoencoder",
        )

    def check_defaults(self, defaults: Defaults) -> None:
        check_variant_options(self, defaults, ("gamma", "lambda_k", "eta"))
        check_no_penalty_weight(self, defaults)

    def init_state(self, device: torch.device) -> dict[str, Any]:
        zero = torch.zeros((), dtype=torch.float32, device=device)
        return {"step": 0, "k": zero, "balance": zero.clone()}

    def reconstruction_loss(self, critic: Callable, x: torch.Tensor) -> torch.Tensor:
        """L(x)_i = mean_j |x_ij - D(x)_ij|^eta, one value per sample."""
        out = critic_output(critic, x)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"variant {self.name!r} needs an autoencoder critic returning a "
                f"reconstruction of its input's shape {list(x.shape)}, got {shape}"
            )
        err = (x - out).abs()
        eta = self.defaults.options["eta"]
        if eta != 1:
            err = err.pow(eta)
        return err.reshape(x.shape[0], -1).mean(1)

    def critic_loss(self, critic, generator, real, z, state, *, impl=None):
        fake = generate_detached(generator, z)
        loss_real = self.reconstruction_loss(critic, real).mean()
        loss_fake = self.reconstruction_loss(critic, fake).mean()
        k = state["k"]
        loss = loss_real - k * loss_fake
        balance = (self.defaults.options["gamma"] * loss_real - loss_fake).detach()
        # Kept for after_critic_step: the k_t update uses this step's losses, on the device.
        state["balance"] = balance
        logs = {
            "loss": loss.detach(),
            "recon_real": loss_real.detach(),
            "recon_fake": loss_fake.detach(),
            "convergence": loss_real.detach() + balance.abs(),
        }
        return loss, logs

    def generator_loss(self, critic, generator, real, z, state, *, impl=None):
        loss = self.reconstruction_loss(critic, generator(z)).mean()
        return loss, {"loss": loss.detach()}

    def after_critic_step(self, critic, state, *, impl=None):
        k = state["k"] + self.defaults.options["lambda_k"] * state["balance"].to(state["k"].dtype)
        state["k"] = k.clamp(0.0, 1.0)
        return {"k": state["k"].detach()}


began = BEGAN()
