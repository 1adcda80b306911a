"""DRAGAN (Kodali 2017): the standard GAN loss plus a gradient penalty around the real data,

    L_D = E[sp(-v_r)] + E[sp(v_g)] + lambda E[(||grad D(x_hat)|| - 1)^2],
    x_hat = eps x_r + (1 - eps)(x_r + 0.5 std(x_r) U[0, 1))
    L_G = E[sp(-v_g)]   (non-saturating)

Defaults (docs/math.md section 5): lambda = 10, perturbation 0.5 std, Adam 1e-4, betas (0.5, 0.9),
one critic step per generator step.

On point data (`Defaults.points`) lambda = 0.1 and two time-scale rates, critic 1e-3 and
generator 3e-4: as with r1 (plugins/r1.py), a penalty of weight 10 holds the critic's slope
near 1 over a neighbourhood far wider than grid25's modes (standard deviation 0.018, 0.71
apart), and the samples stay spread. Measured with the trainer's point preset (10,000 critic
steps, so 10,000 generator steps; generator 256 wide, critic 128, batch 256, linear lr decay),
one thread per run, 2026-12-01; metrics of docs/math.md section 7 on 2,500 samples (seed 0):

    data     lambda   critic / generator lr   modes    HQ %    train s
    ring8    10       1e-3 / 1e-4              8/8     65.3    147
    grid25   10       1e-3 / 1e-4             11/25     8.0    147
    grid25   10       1e-3 / 3e-4              7/25     4.6    183
    grid25   0.1      1e-3 / 3e-4             25/25    92.9    162   (seeds 0-2: 92.9, 92.4, 91.0)
    ring8    0.1      1e-3 / 3e-4              8/8     96.6    168   (seeds 0-2: 96.6, 96.1, 91.2)
"""

from gankernels.variants import Defaults

from ._common import FAST_GENERATOR_POINTS, AdversarialVariant

dragan = AdversarialVariant(
    "dragan",
    "DRAGAN (Kodali 2017): non-saturating GAN + gradient penalty around perturbed real data",
    Defaults(
        n_critic=1,
        optimizer="adam",
        lr_critic=1e-4,
        lr_generator=1e-4,
        betas=(0.5, 0.9),
        penalty_weight=10.0,
        options={"target": 1.0, "perturb": 0.5},
        points={**FAST_GENERATOR_POINTS, "penalty_weight": 0.1},
    ),
    kind="nonsaturating",
    penalty="dragan",
)
