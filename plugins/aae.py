"""Adversarial autoencoder (Makhzani et al. 2016): an autoencoder whose codes are made to look
like draws from the prior by a critic on the code space,

    E: x -> z, Dec: z -> x (the trainer's generator), D: z -> score (an MLP)
    reconstruction   L_R = E||Dec(E(x)) - x||^2 / numel          (E and Dec)
    critic           L_D = E[sp(-D(z_p))] + E[sp(D(E(x)))]       z_p ~ N(0, I)
    regularisation   L_E = E[sp(-D(E(x)))]                       (E only: the non-saturating
                                                                 generator loss of section 3)

the paper's two phases per batch: the reconstruction step, then the critic's step and the
encoder's. New data are Dec(z_p). Metrics: docs/math.md section 7 on Dec(z_p), and section 9's
reconstruction and latent measures.

Defaults: Adam 2e-4, betas (0.5, 0.999) for every step (the paper used momentum SGD with
hand-tuned rates; Adam at DCGAN's settings is what reimplementations use), one critic step per
generator step.
"""

from __future__ import annotations

import dataclasses

import gankernels
from gankernels.train.models import build_models
from gankernels.variants import Defaults, OptimizerGroup

from ._common import DCGAN_SCHEDULE
from ._encoder import Encoder, EncoderSystem


class AAE(EncoderSystem):
    def __init__(self) -> None:
        super().__init__(
            "aae",
            "adversarial autoencoder (Makhzani 2016): a critic makes the codes E(x) look N(0, I)",
            Defaults(**DCGAN_SCHEDULE),
        )

    def build(self, spec, data):
        code_spec = dataclasses.replace(spec, sample_shape=(spec.z_dim,), critic_kind="score")
        return {
            "encoder": Encoder(spec),
            "generator": build_models(spec)[0],  # the decoder: generated data are its Dec(z)
            "critic": build_models(code_spec)[1],
        }

    def optimizers(self):
        return {
            "autoencoder": OptimizerGroup(("encoder", "generator"), "generator"),
            "critic": OptimizerGroup(("critic",), "critic"),
            "encoder": OptimizerGroup(("encoder",), "generator"),
        }

    def train_step(self, run):
        encoder, decoder, critic = (run.nets[k] for k in ("encoder", "generator", "critic"))
        b = run.batch()
        recon = (decoder(encoder(b.x)) - b.x).square().mean()
        run.update("autoencoder", recon)
        for _ in range(run.defaults.n_critic):
            b = run.batch()
            codes = encoder(b.x).detach()
            loss_c = gankernels.discriminator_loss(
                critic(b.z), critic(codes), kind="nonsaturating", impl=run.impl
            )
            run.update("critic", loss_c)
        b = run.batch()
        loss_e = gankernels.generator_loss(
            critic(encoder(b.x)), kind="nonsaturating", impl=run.impl
        )
        run.update("encoder", loss_e)
        return loss_c.detach(), loss_e.detach(), {"reconstruction": recon.detach()}


aae = AAE()
