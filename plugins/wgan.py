"""Wasserstein GANs: the critic estimates W1 (Arjovsky 2017) under a Lipschitz constraint.

    L_D = E[v_g] - E[v_r]        L_G = -E[v_g]

wgan     weight clipping w <- clamp(w, -c, c) after each critic step, c = 0.01; RMSprop 5e-5,
         5 critic steps per generator step (Arjovsky 2017, Algorithm 1).
wgan-gp  + lambda E[(||grad D(x_hat)|| - 1)^2] at x_hat = eps x_r + (1 - eps) x_g (Gulrajani
         2017); Adam 1e-4 (3e-3 on point data, below), betas (0.5, 0.9), 5 critic steps.
wgan-lp  the one-sided penalty lambda E[max(||grad D(x_hat)|| - 1, 0)^2] (Petzka 2018): only
         gradients steeper than 1 are penalised; otherwise as wgan-gp.

lambda = 10 for both penalties, the paper's. On point data (the toy sets; `Defaults.points`)
lambda is 0.1, the value of the authors' toy script (gan_toy.py), which trains far better there
within a short budget, and both learning rates are 3e-3 instead of 1e-4; images keep the
paper's lambda and 1e-4. On digits at the trainer's defaults, lambda 0.1 gave samples that are
not digits (6/10 classes, label KL 1.03, precision and recall 0 at k = 3) and lambda 10 gave
10/10 classes, label KL 0.027, precision 0.17 and recall 0.63 (seed 0; the classifier and
k-NN metrics of docs/math.md section 7).

The point-data values, measured with the trainer (critic 128 wide, 3 hidden layers,
z_dim 2, batch 256, n_critic 5, 2,000 generator steps, linear lr decay to 0), lambda 0.1,
seed 0, one thread of a shared 2-core CPU, 2026-11-23; metrics of docs/math.md section 7 on 2,500
samples:

    data     generator width   Adam lr   modes    HQ %    MMD^2      train s
    grid25   128               1e-4     25/25    11.5    1.1e-04    -   (the old defaults)
    grid25   128               1e-3     23/25    21.1    1.2e-04    111
    grid25   256               1e-3     25/25    67.8    7.8e-05    130  *
    grid25   256               2e-3     25/25    83.7    1.4e-04    133  *
    grid25   256               2e-3     25/25    75.6    5.5e-05    121
    grid25   256               3e-3     25/25    88.8    1.4e-04    130
    ring8    256               2e-3      8/8     95.1   -1.1e-05    126  *
    ring8    256               3e-3      8/8     95.3   -1.1e-04    143

* another draw of the initial weights (an experiment script that built the generator twice):
the two grid25 rows at 2e-3 show how far one draw of the initial weights moves HQ %.
(an MMD^2 estimate below 0 is the unbiased estimator's noise around 0). Fewer critic steps do
not pay for themselves: n_critic 3 (generator 384 wide, lr 1e-3) reached 36.7 % on grid25, and
n_critic 1 (128 wide, lr 1e-3, 6,000 steps) collapsed to 5/25 modes. wgan-lp takes the same
values (not tuned separately).
"""

from gankernels.variants import Defaults

from ._common import GP_SCHEDULE, AdversarialVariant

wgan = AdversarialVariant(
    "wgan",
    "Wasserstein GAN (Arjovsky 2017): weight clipping to [-c, c], RMSprop",
    Defaults(n_critic=5, optimizer="rmsprop", lr_critic=5e-5, lr_generator=5e-5, clip_value=0.01),
    kind="wasserstein",
)

_GP_DEFAULTS = dict(
    **GP_SCHEDULE,
    penalty_weight=10.0,
    points={"lr_critic": 3e-3, "lr_generator": 3e-3, "penalty_weight": 0.1},
)

wgan_gp = AdversarialVariant(
    "wgan-gp",
    "WGAN with gradient penalty (Gulrajani 2017): lambda E[(||grad D(x_hat)|| - 1)^2]",
    Defaults(**_GP_DEFAULTS, options={"target": 1.0, "one_sided": False}),
    kind="wasserstein",
    penalty="gp",
)

wgan_lp = AdversarialVariant(
    "wgan-lp",
    "WGAN with the one-sided Lipschitz penalty (Petzka 2018): lambda E[max(||grad D|| - 1, 0)^2]",
    Defaults(**_GP_DEFAULTS, options={"target": 1.0, "one_sided": True}),
    kind="wasserstein",
    penalty="gp",
)
