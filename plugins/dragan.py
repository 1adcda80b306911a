"""DRAGAN (Kodali 2017): the standard GAN loss plus a gradient penalty around the real data,

    L_D = E[sp(-v_r)] + E[sp(v_g)] + lambda E[(||grad D(x_hat)|| - 1)^2],
    x_hat = eps x_r + (1 - eps)(x_r + 0.5 std(x_r) U[0, 1))
    L_G = E[sp(-v_g)]   (non-saturating)

Defaults (docs/math.md section 5): lambda = 10, perturbation 0.5 std, Adam 1e-4, betas (0.5, 0.9),
one critic step per generator step; on point data two time-scale rates, critic 1e-3 and
generator 1e-4 (`_common.TTUR_POINTS`).
"""

from gankernels.variants import Defaults

from ._common import TTUR_POINTS, AdversarialVariant

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
        points=TTUR_POINTS,
    ),
    kind="nonsaturating",
    penalty="dragan",
)
