"""pix2pix (Isola et al. 2017): paired image-to-image translation, here from domain B (the
edges, rotated or inverted digit) to domain A (the digit), so the digits classifier can judge
the result:

    G: x_b -> x_a, an encoder-decoder with skips (U-Net);  D(x_b, x): a PatchGAN on the pair
    L_D = 1/2 (E[sp(-D(x_b, x_a))] + E[sp(D(x_b, G(x_b)))])
    L_G = E[sp(-D(x_b, G(x_b)))] + lambda E|G(x_b) - x_a|            (lambda = l1_weight = 100)

the non-saturating loss (sp the softplus), the critic's objective halved as in the paper, the
patch scores averaged. The paper's generator takes no z (its noise is dropout, which made little
difference there); this one is deterministic.

Defaults: the paper's Adam 2e-4, betas (0.5, 0.999), one critic step per generator step,
lambda = 100.
"""

from __future__ import annotations

import torch

import gankernels
from gankernels.variants import Defaults, System

from ._common import DCGAN_SCHEDULE, check_variant_options, generator_and_critic_optimizers
from ._translation import (
    EncoderDecoder,
    PatchCritic,
    image_channels,
    source_rows,
    translate,
    translation_metrics,
)


class Pix2Pix(System):
    def __init__(self) -> None:
        super().__init__(
            "pix2pix",
            "pix2pix (Isola 2017): paired translation B -> A, U-Net generator, PatchGAN, + L1",
            Defaults(
                **DCGAN_SCHEDULE,
                options={"l1_weight": 100.0},
            ),
            needs=("pairs",),
        )

    def check_defaults(self, defaults):
        check_variant_options(self, defaults, ("l1_weight",))

    def build(self, spec, data):
        c_a = image_channels(spec, self.name)
        c_b = data.second.shape[1]
        return {
            "generator": EncoderDecoder(spec, c_b, c_a),
            "critic": PatchCritic(spec, c_b + c_a),
        }

    def optimizers(self):
        return generator_and_critic_optimizers()

    def train_step(self, run):
        G, D = run.nets["generator"], run.nets["critic"]
        b = run.batch()
        source, target = b.second, b.x
        fake = G(source)
        real_out = D(torch.cat([source, target], 1))
        fake_out = D(torch.cat([source, fake.detach()], 1))
        adversarial = gankernels.discriminator_loss(
            real_out, fake_out, kind="nonsaturating", impl=run.impl
        )
        loss_c = 0.5 * adversarial
        run.update("critic", loss_c)
        l1 = (fake - target).abs().mean()
        loss_g = gankernels.generator_loss(
            D(torch.cat([source, fake], 1)), kind="nonsaturating", impl=run.impl
        )
        loss_g = loss_g + run.defaults.options["l1_weight"] * l1
        run.update("generator", loss_g)
        return loss_c.detach(), loss_g.detach(), {"l1": l1.detach()}

    def generate(self, nets, spec, data, n, seed, device="cpu"):
        """Translations of n source images (domain B) drawn from the data with `seed`."""
        rows = source_rows(n, data.data.shape[0], seed)
        return translate(nets["generator"], data.second[rows], device)

    def evaluate(self, nets, spec, data, reference, n, seed, device="cpu"):
        rows = source_rows(n, data.data.shape[0], seed)
        fake = translate(nets["generator"], data.second[rows], device)
        return translation_metrics(fake, data.data[rows], data.labels[rows], data)


pix2pix = Pix2Pix()
