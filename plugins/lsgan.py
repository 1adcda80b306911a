"""Least-squares GAN (Mao 2017), labels a (fake), b (real), c (what G wants D to say):

    L_D = 1/2 E[(v_r - b)^2] + 1/2 E[(v_g - a)^2],    L_G = 1/2 E[(v_g - c)^2]

Defaults a = -1, b = 1, c = 0 (docs/math.md section 3) and DCGAN's Adam 2e-4, betas (0.5, 0.999);
on point data two time-scale rates, critic 1e-3 and generator 1e-4 (`_common.TTUR_POINTS`).
"""

from gankernels.variants import Defaults

from ._common import DCGAN_SCHEDULE, TTUR_POINTS, AdversarialVariant

lsgan = AdversarialVariant(
    "lsgan",
    "least-squares GAN (Mao 2017): squared error to labels a=-1, b=1, c=0",
    Defaults(
        **DCGAN_SCHEDULE,
        options={"a": -1.0, "b": 1.0, "c": 0.0},
        points=TTUR_POINTS,
    ),
    kind="least_squares",
    critic_options=("a", "b"),
    generator_options=("c",),
)
