"""R1 regularisation (Mescheder 2018; StyleGAN's default): the non-saturating GAN plus

    R1 = gamma / 2 E[||grad D(x_r)||^2]     on the real samples, no interpolation

Lazy regularisation (StyleGAN2): with option lazy_interval = k the penalty runs only on critic
steps with state["step"] % k == 0 (state["step"] counts the critic steps taken before this one),
with gamma multiplied by k so that its average strength per step is unchanged; k = 1 applies
it every step. Defaults: gamma = 10, k = 16 (StyleGAN2's), Adam 2e-4 with StyleGAN's
betas (0, 0.99), one critic step per generator step.

On point data (`Defaults.points`) gamma = 0.1 and two time-scale rates, critic 1e-3 and
generator 3e-4. grid25's modes have a standard deviation of 0.018 and lie 0.71 apart (after
the set's scaling, gankernels/train/data.py); gamma = 10 flattens the critic around the real
points over far more than that, and the samples stay spread between the modes. Measured with
the trainer's point preset (10,000 critic steps, so 10,000 generator steps; generator 256 wide,
critic 128, batch 256, linear lr decay), one thread per run, 2026-12-01; metrics of
docs/math.md section 7 on 2,500 samples (seed 0 unless given):

    data     gamma   critic / generator lr   modes    HQ %    train s
    ring8    10      1e-3 / 1e-4              8/8     82.7    117   (seeds 0-2: worst 82.7)
    grid25   10      1e-3 / 1e-4             25/25    18.4    108   (seeds 0-2: worst 18.4)
    grid25   1       1e-3 / 1e-4             25/25    39.5
    grid25   0.1     1e-3 / 1e-4             25/25    58.2
    grid25   0.01    1e-3 / 1e-4             25/25    61.5    107
    grid25   0.1     1e-3 / 3e-4             25/25    92.0    112   (seeds 0-2: 92.0, 93.6, 93.4)
    ring8    0.1     1e-3 / 3e-4              8/8     96.5    119   (seeds 0-2: 96.5, 96.7, 94.2)

The smaller gamma alone stops near 60 %; the generator's faster rate is what tightens the modes.
"""

from gankernels.variants import Defaults

from ._common import FAST_GENERATOR_POINTS, AdversarialVariant

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
        points={**FAST_GENERATOR_POINTS, "penalty_weight": 0.1},
    ),
    kind="nonsaturating",
    penalty="r1",
)
