"""Hinge-loss GAN (Lim & Ye 2017; SNGAN, BigGAN):

    L_D = E[relu(1 - v_r)] + E[relu(1 + v_g)],    L_G = -E[v_g]

Defaults: DCGAN's Adam 2e-4, betas (0.5, 0.999), one critic step per generator step.

On point data (`Defaults.points`) two time-scale rates, critic 1e-3 and generator 3e-4. With
the generator at 1e-4 (`_common.TTUR_POINTS`, whose table has the first runs) grid25's worst of
three seeds kept 16/25 modes at 65.3 % high quality. Measured with the trainer's point preset
(10,000 critic steps, so 10,000 generator steps; generator 256 wide, critic 128, batch 256,
linear lr decay), one thread per run, 2026-12-01; metrics of docs/math.md section 7 on 2,500
samples:

    data     critic / generator lr   seeds 0, 1, 2 modes    HQ %                  train s
    grid25   1e-3 / 1e-4             worst 16/25            worst 65.3, median 70.2
    grid25   1e-3 / 3e-4             23, 20, 23 /25         86.0, 80.4, 91.6      118-130
    ring8    1e-3 / 1e-4             8, 8, 8 /8             88.4, 90.0, 87.6      109
    ring8    1e-3 / 3e-4             8, 8, 8 /8             96.4, 95.8, 96.7      121-125
"""

from ._common import DCGAN_FAST_GENERATOR_DEFAULTS, AdversarialVariant

hinge = AdversarialVariant(
    "hinge",
    "hinge-loss GAN (SNGAN, BigGAN): relu(1 - v_r) + relu(1 + v_g), generator -E[v_g]",
    DCGAN_FAST_GENERATOR_DEFAULTS,
    kind="hinge",
)
