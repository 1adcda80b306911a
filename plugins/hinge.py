"""Hinge-loss GAN (Lim & Ye 2017; SNGAN, BigGAN):

    L_D = E[relu(1 - v_r)] + E[relu(1 + v_g)],    L_G = -E[v_g]

Defaults: DCGAN's Adam 2e-4, betas (0.5, 0.999), one critic step per generator step.
"""

from gankernels.variants import Defaults

from ._common import AdversarialVariant

hinge = AdversarialVariant(
    "hinge",
    "hinge-loss GAN (SNGAN, BigGAN): relu(1 - v_r) + relu(1 + v_g), generator -E[v_g]",
    Defaults(n_critic=1, optimizer="adam", lr_critic=2e-4, lr_generator=2e-4, betas=(0.5, 0.999)),
    kind="hinge",
)
