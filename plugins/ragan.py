"""Relativistic average GAN (Jolicoeur-Martineau 2018), the standard (BCE) form:

    L_D = E[sp(-(v_r - E v_g))] + E[sp(v_g - E v_r)]
    L_G = E[sp(-(v_g - E v_r))] + E[sp(v_r - E v_g)]

The generator loss reads D(x_r) too (as a constant: only G's gradient is taken).
Defaults: DCGAN's Adam 2e-4, betas (0.5, 0.999), one critic step per generator step; on point
data two time-scale rates, critic 1e-3 and generator 1e-4 (the runs: `_common.TTUR_POINTS`).
"""

from ._common import DCGAN_DEFAULTS, AdversarialVariant

ragan = AdversarialVariant(
    "ragan",
    "relativistic average GAN (Jolicoeur-Martineau 2018): is real more real than the average fake?",
    DCGAN_DEFAULTS,
    kind="relativistic",
)
