"""SNGAN (Miyato et al. 2018): the hinge loss with spectral normalisation of every critic layer,

    W_SN = W / sigma(W),    sigma(W) the largest singular value of W (of a convolution's kernel
                            reshaped to [out, in * k * k]),
    L_D = E[relu(1 - v_r)] + E[relu(1 + v_g)],    L_G = -E[v_g]

sigma(W) is estimated by one power iteration per training forward, its vectors u, v kept as
buffers (torch.nn.utils.parametrizations.spectral_norm, PyTorch's own). With 1-Lipschitz
activations (ReLU, LeakyReLU) the critic is then at most 1-Lipschitz, without a penalty.

Defaults: Adam 2e-4, betas (0, 0.9), 5 critic steps per generator step: the paper's setting for
its ResNet models, which BigGAN kept.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from gankernels.variants import Defaults

from ._common import AdversarialVariant

# The layers that carry a weight matrix (or kernel) whose spectral norm bounds the layer's.
NORMALISED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class SNGAN(AdversarialVariant):
    """The hinge loss, with `prepare_critic` putting spectral normalisation on every Linear and
    convolution of the critic."""

    def __init__(self) -> None:
        super().__init__(
            "sngan",
            "spectrally normalised GAN (Miyato 2018): hinge loss, every critic layer W / sigma(W)",
            Defaults(
                n_critic=5, optimizer="adam", lr_critic=2e-4, lr_generator=2e-4, betas=(0.0, 0.9)
            ),
            kind="hinge",
        )

    def prepare_critic(self, critic: nn.Module) -> nn.Module:
        layers = [m for m in critic.modules() if isinstance(m, NORMALISED_LAYERS)]
        if not layers:
            raise ValueError(
                f"variant {self.name!r} normalises the critic's Linear and convolution layers, "
                f"but {type(critic).__name__} has none"
            )
        for layer in layers:
            # A layer the user normalised already keeps its one normalisation.
            if not parametrize.is_parametrized(layer, "weight"):
                spectral_norm(layer)
        return critic


sngan = SNGAN()
