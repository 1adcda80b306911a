"""Hinge-loss GAN (Lim & Ye 2017; SNGAN, BigGAN):

    L_D = E[relu(1 - v_r)] + E[relu(1 + v_g)],    L_G = -E[v_g]

Defaults: DCGAN's Adam 2e-4, betas (0.5, 0.999), one critic step per generator step; on point
data two time-scale rates, critic 1e-3 and generator 1e-4 (the runs: `_common.TTUR_POINTS`).
"""

from ._common import DCGAN_DEFAULTS, AdversarialVariant

hinge = AdversarialVariant(
    "hinge",
    "hinge-loss GAN (SNGAN, BigGAN): relu(1 - v_r) + relu(1 + v_g), generator -E[v_g]",
    DCGAN_DEFAULTS,
    kind="hinge",
)
