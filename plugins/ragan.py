"""Relativistic average GAN (Jolicoeur-Martineau 2018), the standard (BCE) form:

    L_D = E[sp(-(v_r - E v_g))] + E[sp(v_g - E v_r)]
    L_G = E[sp(-(v_g - E v_r))] + E[sp(v_r - E v_g)]

The generator loss reads D(x_r) too (as a constant: only G's gradient is taken).
Defaults: DCGAN's Adam 2e-4, betas (0.5, 0.999), one critic step per generator step; on point
data two time-scale rates, critic 1e-3 and generator 3e-4 (`_common.FAST_GENERATOR_POINTS`).
Measured with the point preset (10,000 critic steps, so 10,000 generator steps; generator 256
wide, critic 128, batch 256, linear lr decay), one thread per run, 2026-12-02; metrics of
docs/math.md section 7 on 2,500 samples (the 1e-4 rows: the README's table of 2026-12-01):

    data     critic / generator lr   seeds       modes            HQ %                train s
    ring8    1e-3 / 1e-4             0, 1, 2     worst 6/8        worst 92.4          175
    ring8    1e-3 / 3e-4             0, 1, 2     8, 8, 8 /8       96.0, 97.0, 97.1    86-129
    grid25   1e-3 / 1e-4             0, 1, 2     worst 12/25      worst 65.5          173
    grid25   1e-3 / 3e-4             0, 1, 2     22, 24, 25 /25   91.0, 86.3, 91.0    107-125
"""

from ._common import DCGAN_FAST_GENERATOR_DEFAULTS, AdversarialVariant

ragan = AdversarialVariant(
    "ragan",
    "relativistic average GAN (Jolicoeur-Martineau 2018): is real more real than the average fake?",
    DCGAN_FAST_GENERATOR_DEFAULTS,
    kind="relativistic",
)
