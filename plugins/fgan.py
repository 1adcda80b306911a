"""f-GANs (Nowozin 2016): the critic maximises the variational lower bound of D_f(P || Q),

    L_D = -E[g_f(v_r)] + E[f*(g_f(v_g))]      (at the optimum L_D = -D_f(P || Q))
    L_G = -E[g_f(v_g)]                        (option nonsaturating=True, the paper's choice)
          -E[f*(g_f(v_g))]                    (nonsaturating=False: the saddle-point objective)

with the output activation g_f and conjugate f* of docs/math.md section 3 for each divergence.
Defaults: DCGAN's Adam 2e-4, betas (0.5, 0.999), one critic step per generator step.

On point data fgan-kl, fgan-pearson and fgan-js use two time-scale rates, critic 1e-3 and
generator 1e-4 (`_common.TTUR_POINTS`); the other four keep the papers' rates, with which TTUR
did not help. Measured with the trainer's point preset (10,000 generator steps; generator 256
wide, critic 128, batch 256, linear lr decay), one thread of a shared 2-core CPU, 2026-12-01;
metrics of docs/math.md section 7 on 2,500 samples; "2e-4" rows are the README's table of the
same day, seed 0:

    variant                  data     lr critic / gen   seeds    modes          HQ %
    fgan-kl                  ring8    2e-4 / 2e-4       0         0/8            0.0
    fgan-kl                  ring8    1e-3 / 1e-4       0         8/8           66.3
    fgan-kl                  grid25   2e-4 / 2e-4       0         0/25           0.0
    fgan-kl                  grid25   1e-3 / 1e-4       0        25/25          20.9
    fgan-pearson             ring8    2e-4 / 2e-4       0         0/8            0.0
    fgan-pearson             ring8    1e-3 / 1e-4       0, 1, 2   8, 8, 8/8     82.2, 83.6, 87.7
    fgan-pearson             grid25   2e-4 / 2e-4       0         0/25           0.0
    fgan-pearson             grid25   1e-3 / 1e-4       0        25/25          47.6
    fgan-js                  ring8    2e-4 / 2e-4       0         0/8            0.0
    fgan-js                  ring8    1e-3 / 1e-4       0, 1, 2   7, 8, 8/8     90.1, 93.0, 92.2
    fgan-js                  grid25   2e-4 / 2e-4       0         4/25           2.2
    fgan-js                  grid25   1e-3 / 1e-4       0        16/25          78.0
    fgan-reverse-kl          ring8    2e-4 / 2e-4       0         5/8           25.1
    fgan-reverse-kl          ring8    1e-3 / 1e-4       0        diverged (NaN loss)
    fgan-neyman              ring8    1e-3 / 1e-4       0         0/8            0.0
    fgan-squared-hellinger   ring8    2e-4 / 2e-4       0         3/8           29.4
    fgan-squared-hellinger   ring8    1e-3 / 1e-4       0         3/8           85.0
    fgan-tv                  ring8    1e-3 / 1e-4       0         0/8            0.0

(fgan-squared-hellinger keeps the papers' rates until grid25 is measured.)

The faster generator that gan, ragan and hinge take on point data (critic 1e-3, generator 3e-4,
`_common.FAST_GENERATOR_POINTS`) does not carry over (seed 0, 2026-12-02): fgan-js ring8 8/8 at
96.7 % but grid25 13/25 at 94.0 %; fgan-pearson grid25 25/25 at 85.4 % but ring8 8/8 at 64.6 %;
fgan-kl grid25 0/25 and ring8 diverged (NaN loss). Between the two, fgan-pearson at 1e-3 / 2e-4
(seeds 0, 1, 2): ring8 8/8 at 90.3, 70.6, 93.0 %, grid25 25, 21, 25/25 at 74.2, 10.2, 82.2 %.
They keep TTUR_POINTS.
"""

import dataclasses

from gankernels.variants import Defaults

from ._common import DCGAN_SCHEDULE, TTUR_POINTS, AdversarialVariant

_DEFAULTS = Defaults(
    **DCGAN_SCHEDULE,
    options={"nonsaturating": True},
)
_TTUR_DEFAULTS = dataclasses.replace(_DEFAULTS, points=TTUR_POINTS)


def _fgan(divergence: str, title: str, defaults: Defaults = _DEFAULTS) -> AdversarialVariant:
    name = "fgan-" + divergence.replace("_", "-")
    return AdversarialVariant(
        name,
        f"f-GAN (Nowozin 2016) minimising the {title}",
        defaults,
        kind=divergence,
        generator_options=("nonsaturating",),
    )


fgan_kl = _fgan("kl", "Kullback-Leibler divergence KL(P || Q)", _TTUR_DEFAULTS)
fgan_reverse_kl = _fgan("reverse_kl", "reverse Kullback-Leibler divergence KL(Q || P)")
fgan_pearson = _fgan("pearson", "Pearson chi^2 divergence", _TTUR_DEFAULTS)
fgan_neyman = _fgan("neyman", "Neyman chi^2 divergence")
fgan_squared_hellinger = _fgan("squared_hellinger", "squared Hellinger distance")
fgan_js = AdversarialVariant(
    "fgan-js",
    "f-GAN (Nowozin 2016) minimising the Jensen-Shannon divergence",
    _TTUR_DEFAULTS,
    kind="jensen_shannon",
    generator_options=("nonsaturating",),
)
fgan_tv = AdversarialVariant(
    "fgan-tv",
    "f-GAN (Nowozin 2016) minimising the total variation distance",
    _DEFAULTS,
    kind="total_variation",
    generator_options=("nonsaturating",),
)
