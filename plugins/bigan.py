"""BiGAN / ALI (Donahue et al. 2017; Dumoulin et al. 2017): a generator G: z -> x and an encoder
E: x -> z trained together against one critic on joint pairs, with ALICE's explicit
cycle-consistency term (Li et al. 2017) on the encoder and generator,

    D(x, z) = h([phi(x), psi(z)]),  phi the trainer's critic body, psi and h MLPs
    L_D     = E[sp(-D(x, E(x)))] + E[sp(D(G(z), z))]
    L_{G,E} = E[sp(D(x, E(x)))] + E[sp(-D(G(z), z))]      (each side's labels swapped: the
              + w E|G(E(x)) - x| / numel                  non-saturating form both papers use)

with w = 10 (option recon_weight; 0 is BiGAN / ALI as published). At the adversarial optimum E
inverts G, so x -> E(x) -> G(E(x)) reconstructs x; ALICE shows the joint match alone does not
pin that down (the conditionals are not identifiable from the joint) and adds the L1 term.
Measured on digits (the images preset's 2,000 steps unless given, one thread, 2026-12-01):

    recon_weight   seed   steps   recon_accuracy %   latent_mmd2   precision / recall
    0              0      2,000          1.2            0.11
    0              0      6,000         16.2            0.044        0.39 / 0.62
    1              0      2,000         18.7            0.14         0.16 / 0.12
    10             0      2,000         92.9            0.061        0.21 / 0.67
    10             1      2,000         93.4            0.075        0.21 / 0.65
    10             2      2,000         92.4            0.074        0.19 / 0.67

(both rates at 1e-4 and w = 0: 13.6 % and 0.22). The goal (docs/math.md section 9) is 90 % and
0.3; without the cycle term the reconstructions keep the digit less often than chance would.
New data are G(z). Metrics: docs/math.md section 7 on G(z), and section 9's reconstruction and
latent measures.

Defaults: Adam 2e-4, betas (0.5, 0.999), one critic step per generator step (BiGAN's setting;
ALI used Adam 1e-4 with beta1 = 0.5).
"""

from __future__ import annotations

import torch
from torch import nn

import gankernels
from gankernels.train.models import ModelSpec, build_models, critic_trunk
from gankernels.variants import Defaults

from ._common import DCGAN_SCHEDULE, check_variant_options, generator_and_critic_optimizers
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
            "BiGAN / ALI (Donahue 2017, Dumoulin 2017): generator and encoder vs a joint critic, "
            "with ALICE's L1 cycle term (Li 2017)",
            Defaults(
                **DCGAN_SCHEDULE,
                options={"recon_weight": 10.0},
            ),
        )

    def check_defaults(self, defaults):
        check_variant_options(self, defaults, ("recon_weight",))

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
        codes = E(b.x)
        # The labels swapped: the encoder's pairs should look generated, the generator's real.
        loss_g = gankernels.discriminator_loss(
            D(G(b.z), b.z), D(b.x, codes), kind="nonsaturating", impl=run.impl
        )
        recon = (G(codes) - b.x).abs().mean()
        run.update("generator", loss_g + run.defaults.options["recon_weight"] * recon)
        return loss_c.detach(), loss_g.detach(), {"reconstruction": recon.detach()}


bigan = BiGAN()
