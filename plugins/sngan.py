"""SNGAN (Miyato et al. 2018): the hinge loss with spectral normalisation of every critic layer,

    W_SN = W / sigma(W),    sigma(W) the largest singular value of W (of a convolution's kernel
                            reshaped to [out, in * k * k]),
    L_D = E[relu(1 - v_r)] + E[relu(1 + v_g)],    L_G = -E[v_g]

sigma(W) is estimated by one power iteration per training forward, its vectors u, v kept as
buffers (torch.nn.utils.parametrizations.spectral_norm, PyTorch's own). With 1-Lipschitz
activations (ReLU, LeakyReLU) the critic is then at most 1-Lipschitz, without a penalty.

Defaults: Adam 2e-4, betas (0, 0.9), 5 critic steps per generator step: the paper's setting for
its ResNet models, which BigGAN kept. On point data hinge's preset (`Defaults.points`): one
critic step per generator step, critic 1e-3 and generator 3e-4
(`_common.FAST_GENERATOR_POINTS`). Measured with the trainer's point preset (a budget of 10,000
critic steps: 2,000 generator steps at five critic steps, 10,000 at one; generator 256 wide,
critic 128, batch 256, linear lr decay), one thread per run, 2026-12-01 and -02; metrics of
docs/math.md section 7 on 2,500 samples:

    data     n_critic   critic / generator lr   seeds     modes          HQ %                s
    ring8    5          2e-4 / 2e-4             0         8/8            61.0                96
    ring8    5          1e-3 / 1e-3             0, 1      8, 8 /8        85.8, 84.6          84
    ring8    1          1e-3 / 3e-4             0, 1, 2   8, 8, 8 /8     94.7, 95.2, 92.4    154
    grid25   5          1e-3 / 1e-3             0, 1, 2   worst 23/25    worst 37.5          77
    grid25   1          1e-3 / 3e-4             0, 1, 2   25, 25, 25/25  84.9, 87.1, 80.5    143

With five critic steps no rate tried reached 70 % on grid25 (seed 0; critic / generator lr):
3e-3 / 3e-3 25/25 at 62.0 %; 5e-3 / 5e-3 24/25 at 43.6 %; 1e-3 / 3e-3 67.6 %; 1e-3 / 5e-3
69.2 % (seeds 1 and 2: 50.9 and 53.7 %); 5e-4 / 3e-3 36.2 %; 3e-3 / 3e-3 with betas (0.5, 0.9)
2.4 %. One critic step at 1e-3 / 1e-4 gave 24.4 %: it is the faster generator together with
one critic step (five times the generator steps for the same critic budget) that works.
"""

from __future__ import annotations

from torch import nn

from gankernels.variants import Defaults

from ._common import FAST_GENERATOR_POINTS, AdversarialVariant, spectral_normalise


class SNGAN(AdversarialVariant):
    """The hinge loss, with `prepare_critic` putting spectral normalisation on every Linear and
    convolution of the critic."""

    def __init__(self) -> None:
        super().__init__(
            "sngan",
            "spectrally normalised GAN (Miyato 2018): hinge loss, every critic layer W / sigma(W)",
            Defaults(
                n_critic=5,
                optimizer="adam",
                lr_critic=2e-4,
                lr_generator=2e-4,
                betas=(0.0, 0.9),
                points={"n_critic": 1, **FAST_GENERATOR_POINTS},
            ),
            kind="hinge",
        )

    def prepare_critic(self, critic: nn.Module) -> nn.Module:
        return spectral_normalise(critic, self.name)


sngan = SNGAN()
