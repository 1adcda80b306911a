"""CycleGAN (Zhu et al. 2017): unpaired translation between domains A and B with two
generators, two critics, the least-squares loss and cycle consistency,

    G_ab: A -> B, G_ba: B -> A (residual networks at full resolution); D_a, D_b PatchGANs
    L_G = E[(D_b(G_ab(a)) - 1)^2] + E[(D_a(G_ba(b)) - 1)^2]
          + lambda (E|G_ba(G_ab(a)) - a| + E|G_ab(G_ba(b)) - b|)                     cycle
          + mu lambda (E|G_ba(a) - a| + E|G_ab(b) - b|)                             identity
    L_D = 1/2 (E[(D_a(a) - 1)^2] + E[D_a(G_ba(b))^2]) + the same for D_b

a and b drawn independently (the "domains" need: no pairs are used), the generators' step first
and then the critics' on the same translations. Left out: the paper's history of 50 earlier
translations shown to the critics.

Defaults: the paper's Adam 2e-4, betas (0.5, 0.999), one critic step per generator step, and
lambda = cycle_weight = 1, mu = identity_weight = 0, where the paper has lambda = 10 and the
authors' code mu = 0.5. With those the unpaired generators settle on a map that satisfies the
cycle but does not keep the digit; with lambda = 1 and no identity term the adversarial terms
win. Label accuracy of the translations B -> A (docs/math.md section 9) at the defaults
otherwise, seed 0, one thread of a shared 2-core CPU, 2026-12-01 ("U-Net": the encoder-decoder
with skips of pix2pix, tried first; "residual": the generators here):

    data              generator   lambda   mu     label accuracy %
    digits-inverted   U-Net       10       0.5     0.5
    digits-inverted   U-Net       10       0       4.4
    digits-inverted   residual    10       0.5     0.0
    digits-inverted   residual    1        0.5    10.1
    digits-inverted   residual    1        0      97.6
    digits-rotated    U-Net       10       0.5    21.4
    digits-rotated    U-Net       10       0       5.6
    digits-rotated    residual    1        0      19.7
    digits-edges      residual    10       0.5     7.2

The identity term asks G_ba(a) = a, which an inversion contradicts outright. A rotation moves
every pixel across the image, which these full-resolution generators (a 13-pixel receptive
field, no bottleneck) do not find from unpaired data: the quality goal is set on
digits-inverted.
"""

from __future__ import annotations

import gankernels
from gankernels.variants import Defaults, OptimizerGroup, System

from ._common import DCGAN_SCHEDULE, check_variant_options
from ._translation import (
    PatchCritic,
    ResidualTranslator,
    image_channels,
    source_rows,
    translate,
    translation_metrics,
)


def _generator_gan(critic_out, impl):
    # 2 x section 3's 1/2 E[(v - c)^2] with c = 1: the paper's E[(D(G(x)) - 1)^2].
    return 2 * gankernels.generator_loss(critic_out, kind="least_squares", c=1.0, impl=impl)


class CycleGAN(System):
    def __init__(self) -> None:
        super().__init__(
            "cyclegan",
            "CycleGAN (Zhu 2017): unpaired A <-> B, two generators and critics, LSGAN + cycle",
            Defaults(
                **DCGAN_SCHEDULE,
                options={"cycle_weight": 1.0, "identity_weight": 0.0},
            ),
            needs=("domains",),
        )

    def check_defaults(self, defaults):
        check_variant_options(self, defaults, ("cycle_weight", "identity_weight"))

    def build(self, spec, data):
        c_a = image_channels(spec, self.name)
        c_b = data.second.shape[1]
        return {
            "generator_ab": ResidualTranslator(spec, c_a, c_b),
            "generator_ba": ResidualTranslator(spec, c_b, c_a),
            "critic_a": PatchCritic(spec, c_a),
            "critic_b": PatchCritic(spec, c_b),
        }

    def optimizers(self):
        return {
            "generators": OptimizerGroup(("generator_ab", "generator_ba"), "generator"),
            "critics": OptimizerGroup(("critic_a", "critic_b"), "critic"),
        }

    def train_step(self, run):
        nets, impl = run.nets, run.impl
        g_ab, g_ba = nets["generator_ab"], nets["generator_ba"]
        d_a, d_b = nets["critic_a"], nets["critic_b"]
        cycle_w = run.defaults.options["cycle_weight"]
        identity_w = run.defaults.options["identity_weight"] * cycle_w
        batch = run.batch()
        a, b = batch.x, batch.second
        fake_b, fake_a = g_ab(a), g_ba(b)
        adversarial = _generator_gan(d_b(fake_b), impl) + _generator_gan(d_a(fake_a), impl)
        cycle = (g_ba(fake_b) - a).abs().mean() + (g_ab(fake_a) - b).abs().mean()
        loss_g = adversarial + cycle_w * cycle
        logs = {"adversarial": adversarial.detach(), "cycle": cycle.detach()}
        if identity_w > 0:
            identity = (g_ba(a) - a).abs().mean() + (g_ab(b) - b).abs().mean()
            loss_g = loss_g + identity_w * identity
            logs["identity"] = identity.detach()
        run.update("generators", loss_g)
        loss_c = 0
        for critic, real, fake in ((d_a, a, fake_a), (d_b, b, fake_b)):
            loss_c = loss_c + gankernels.discriminator_loss(
                critic(real),
                critic(fake.detach()),
                kind="least_squares",
                a=0.0,
                b=1.0,
                impl=impl,
            )
        run.update("critics", loss_c)
        return loss_c.detach(), loss_g.detach(), logs

    def generate(self, nets, spec, data, n, seed, device="cpu"):
        """Translations B -> A of n domain-B images drawn from the data with `seed`."""
        rows = source_rows(n, data.data.shape[0], seed)
        return translate(nets["generator_ba"], data.second[rows], device)

    def evaluate(self, nets, spec, data, reference, n, seed, device="cpu"):
        """Label accuracy and L1 of the B -> A translations (the pairs are only used here),
        and the cycle error of A -> B -> A."""
        rows = source_rows(n, data.data.shape[0], seed)
        fake_a = translate(nets["generator_ba"], data.second[rows], device)
        metrics = translation_metrics(fake_a, data.data[rows], data.labels[rows], data)
        fake_b = translate(nets["generator_ab"], data.data[rows], device)
        back = translate(nets["generator_ba"], fake_b, device)
        metrics["cycle_l1"] = float((back - data.data[rows]).abs().mean())
        metrics["l1_ab"] = float((fake_b - data.second[rows]).abs().mean())
        return metrics


cyclegan = CycleGAN()
