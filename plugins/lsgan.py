"""Least-squares GAN (Mao 2017), labels a (fake), b (real), c (what G wants D to say):

    L_D = 1/2 E[(v_r - b)^2] + 1/2 E[(v_g - a)^2],    L_G = 1/2 E[(v_g - c)^2]

Defaults a = -1, b = 1, c = 0 (docs/math.md section 3) and DCGAN's Adam 2e-4, betas (0.5, 0.999);
on point data two time-scale rates, critic 1e-3 and generator 1e-4 (`_common.TTUR_POINTS`).

On point data lsgan keeps few modes, each tight (seed 0, 10,000 generator steps, metrics of
docs/math.md section 7; 2026-12-01 and -02):

    labels a, b, c   critic / generator lr   ring8 modes, HQ %   grid25 modes, HQ %
    -1, 1, 0         1e-3 / 1e-4             6/8, 87.2           8/25, 88.8
    -1, 1, 0         1e-3 / 3e-4             3/8, 97.6           9/25, 97.7
    0, 1, 1          1e-3 / 1e-4             -                   18/25, 73.9

The 0-1 coding (the paper's other choice, --option a=0 --option b=1 --option c=1) keeps more
of grid25's modes; it stays an option, since `Defaults.points` carries no options.
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
