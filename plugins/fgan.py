"""f-GANs (Nowozin 2016): the critic maximises the variational lower bound of D_f(P || Q),

    L_D = -E[g_f(v_r)] + E[f*(g_f(v_g))]      (at the optimum L_D = -D_f(P || Q))
    L_G = -E[g_f(v_g)]                        (option nonsaturating=True, the paper's choice)
          -E[f*(g_f(v_g))]                    (nonsaturating=False: the saddle-point objective)

with the output activation g_f and conjugate f* of docs/math.md section 3 for each divergence.
Defaults: DCGAN's Adam 2e-4, betas (0.5, 0.999), one critic step per generator step.
"""

from gankernels.variants import Defaults

from ._common import AdversarialVariant

_DEFAULTS = Defaults(
    n_critic=1,
    optimizer="adam",
    lr_critic=2e-4,
    lr_generator=2e-4,
    betas=(0.5, 0.999),
    options={"nonsaturating": True},
)


def _fgan(divergence: str, title: str) -> AdversarialVariant:
    name = "fgan-" + divergence.replace("_", "-")
    return AdversarialVariant(
        name,
        f"f-GAN (Nowozin 2016) minimising the {title}",
        _DEFAULTS,
        kind=divergence,
        generator_options=("nonsaturating",),
    )


fgan_kl = _fgan("kl", "Kullback-Leibler divergence KL(P || Q)")
fgan_reverse_kl = _fgan("reverse_kl", "reverse Kullback-Leibler divergence KL(Q || P)")
fgan_pearson = _fgan("pearson", "Pearson chi^2 divergence")
fgan_neyman = _fgan("neyman", "Neyman chi^2 divergence")
fgan_squared_hellinger = _fgan("squared_hellinger", "squared Hellinger distance")
fgan_js = AdversarialVariant(
    "fgan-js",
    "f-GAN (Nowozin 2016) minimising the Jensen-Shannon divergence",
    _DEFAULTS,
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
