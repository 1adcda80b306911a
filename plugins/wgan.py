"""Wasserstein GANs: the critic estimates W1 (Arjovsky 2017) under a Lipschitz constraint.

    L_D = E[v_g] - E[v_r]        L_G = -E[v_g]

wgan     weight clipping w <- clamp(w, -c, c) after each critic step, c = 0.01; RMSprop 5e-5,
         5 critic steps per generator step (Arjovsky 2017, Algorithm 1).
wgan-gp  + lambda E[(||grad D(x_hat)|| - 1)^2] at x_hat = eps x_r + (1 - eps) x_g (Gulrajani
         2017); Adam 1e-4, betas (0.5, 0.9), 5 critic steps.
wgan-lp  the one-sided penalty lambda E[max(||grad D(x_hat)|| - 1, 0)^2] (Petzka 2018): only
         gradients steeper than 1 are penalised; otherwise as wgan-gp.

lambda = 0.1 for both penalties: the value of the authors' toy script (gan_toy.py), not the
paper's 10 for images. On the 2-D toy sets with the trainer it trains far better within a short
budget. Measured with `python -m gankernels train --variant wgan-gp --hidden 128 --steps 1500
--batch-size 128` (seed 0, 2-core CPU, 2026-11-23; metrics of math.md section 7 on 2,500 samples):

    data     lambda   modes    HQ %    MMD^2
    grid25   10        3/25     0.9    0.072
    grid25   0.1      24/25     8.8    5.6e-05
    ring8    10        2/8      0.4    0.145
    ring8    0.1       8/8     22.9    5.0e-04

wgan-lp takes the same value (not measured separately). For image data pass the paper's
value: `--penalty-weight 10` (or `configure(penalty_weight=10)`).
"""

from gankernels.variants import Defaults

from ._common import AdversarialVariant

wgan = AdversarialVariant(
    "wgan", "Wasserstein GAN (Arjovsky 2017): weight clipping to [-c, c], RMSprop",
    Defaults(n_critic=5, optimizer="rmsprop", lr_critic=5e-5, lr_generator=5e-5,
             clip_value=0.01),
    kind="wasserstein")

_GP_DEFAULTS = dict(n_critic=5, optimizer="adam", lr_critic=1e-4, lr_generator=1e-4,
                    betas=(0.5, 0.9), penalty_weight=0.1)

wgan_gp = AdversarialVariant(
    "wgan-gp", "WGAN with gradient penalty (Gulrajani 2017): lambda E[(||grad D(x_hat)|| - 1)^2]",
    Defaults(**_GP_DEFAULTS, options={"target": 1.0, "one_sided": False}),
    kind="wasserstein", penalty="gp")

wgan_lp = AdversarialVariant(
    "wgan-lp", "WGAN with the one-sided Lipschitz penalty (Petzka 2018): "
    "lambda E[max(||grad D|| - 1, 0)^2]",
    Defaults(**_GP_DEFAULTS, options={"target": 1.0, "one_sided": True}),
    kind="wasserstein", penalty="gp")
