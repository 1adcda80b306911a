"""BiGAN / ALI (Donahue et al. 2017; Dumoulin et al. 2017): a generator G: z -> x and an encoder
E: x -> z trained together against one critic on joint pairs,

    D(x, z) = h([phi(x), psi(z)]),  phi the trainer's critic body, psi and h MLPs
    L_D     = E[sp(-D(x, E(x)))] + E[sp(D(G(z), z))]
    L_{G,E} = E[sp(D(x, E(x)))] + E[sp(-D(G(z), z))]      (each side's labels swapped: the
                                                          non-saturating form both papers use)

At the optimum E inverts G, so x -> E(x) -> G(E(x)) reconstructs x (semantically: BiGAN's
reconstructions keep the class more than the pixels). New data are G(z). Metrics: docs/math.md
section 7 on G(z), and section 9's reconstruction and latent measures.

Status: on digits the inversion is not learned yet (seed 0, 2026-12-01: recon_accuracy 1.2 %
and latent_mmd2 0.11 at the defaults; 13.6 % and 0.22 with both rates at 1e-4; the goal is
90 % and 0.3). On ring8: 6/8 modes at 92 % high quality, recon_accuracy 47 % (chance 12.5 %),
latent_mmd2 0.027.

Defaults: Adam 2e-4, betas (0.5, 0.999), one critic step per generator step (BiGAN's setting;
ALI used Adam 1e-4 with beta1 = 0.5).
"""

from __future__ import annotations

import torch
from torch import nn

import gankernels
from gankernels.train.models import ModelSpec, build_models, critic_trunk
from gankernels.variants import Defaults

from ._common import generator_and_critic_optimizers
from ._encoder import Encoder, EncoderSystem


class JointCritic(nn.Module):
    """(x, z) -> score [B]: x through the trainer's critic body, z through an MLP, the two
    feature vectors concatenated and mapped to one score."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.x_features, width = critic_trunk(spec)
        self.z_features = nn.Sequential(
            nn.Linear(spec.z_dim, spec.hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(spec.hidden, spec.hidden),
            nn.LeakyReLU(0.2),
        )
        self.joint = nn.Sequential(
            nn.Linear(width + spec.hidden, spec.hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(spec.hidden, 1),
        )

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.x_features(x), self.z_features(z)], 1)
        return self.joint(h).squeeze(1)


class BiGAN(EncoderSystem):
    def __init__(self) -> None:
        super().__init__(
            "bigan",
            "BiGAN / ALI (Donahue 2017, Dumoulin 2017): generator and encoder vs a joint critic",
            Defaults(
                n_critic=1, optimizer="adam", lr_critic=2e-4, lr_generator=2e-4, betas=(0.5, 0.999)
            ),
        )

    def build(self, spec, data):
        return {
            "generator": build_models(spec)[0],
            "encoder": Encoder(spec),
            "critic": JointCritic(spec),
        }

    def optimizers(self):
        return generator_and_critic_optimizers(("generator", "encoder"))

    def train_step(self, run):
        G, E, D = (run.nets[k] for k in ("generator", "encoder", "critic"))
        for _ in range(run.defaults.n_critic):
            b = run.batch()
            with torch.no_grad():
                codes, fake = E(b.x), G(b.z)
            loss_c = gankernels.discriminator_loss(
                D(b.x, codes), D(fake, b.z), kind="nonsaturating", impl=run.impl
            )
            run.update("critic", loss_c)
        b = run.batch()
        # The labels swapped: the encoder's pairs should look generated, the generator's real.
        loss_g = gankernels.discriminator_loss(
            D(G(b.z), b.z), D(b.x, E(b.x)), kind="nonsaturating", impl=run.impl
        )
        run.update("generator", loss_g)
        return loss_c.detach(), loss_g.detach(), {}


bigan = BiGAN()
