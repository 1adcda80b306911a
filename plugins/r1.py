"""R1 regularisation (Mescheder 2018; StyleGAN's default): the non-saturating GAN plus

    R1 = gamma / 2 E[||grad D(x_r)||^2]     on the real samples, no interpolation

Lazy regularisation (StyleGAN2): with option lazy_interval = k the penalty runs only on critic
steps with state["step"] % k == 0 (state["step"] counts the critic steps taken before this one),
with gamma multiplied by k so that its average strength per step is unchanged; k = 1 applies
it every step. Defaults: gamma = 10, k = 16 (StyleGAN2's), Adam 2e-4 with StyleGAN's
betas (0, 0.99), one critic step per generator step; on point data two time-scale rates, critic
1e-3 and generator 1e-4 (`_common.TTUR_POINTS`).
"""

from gankernels.variants import Defaults

from ._common import TTUR_POINTS, AdversarialVariant

r1 = AdversarialVariant(
    "r1",
    "non-saturating GAN + R1 penalty gamma/2 E||grad D(x_r)||^2 (Mescheder 2018), "
    "lazy every k steps",
    Defaults(
        n_critic=1,
        optimizer="adam",
        lr_critic=2e-4,
        lr_generator=2e-4,
        betas=(0.0, 0.99),
        penalty_weight=10.0,
        options={"lazy_interval": 16},
        points=TTUR_POINTS,
    ),
    kind="nonsaturating",
    penalty="r1",
)
