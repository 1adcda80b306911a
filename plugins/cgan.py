"""Conditional GAN with a projection discriminator (Miyato and Koyama 2018):

    D(x, y) = psi(phi(x)) + <embed(y), phi(x)>,      G(z, y) fed [z, one_hot(y)]
    L_D = E[relu(1 - D(x_r, y))] + E[relu(1 + D(G(z, y), y))],    L_G = -E[D(G(z, y), y)]

the hinge loss, with y drawn from the data's labels (each real batch's own) and spectral
normalisation on every critic layer, embedding included, as in the paper. The projection is the
inner product of the class embedding with the critic's features: the log-ratio of the
class-conditional densities under a log-linear model, which conditions the critic far more
strongly than concatenating y to its input.

Defaults: the paper's Adam 2e-4, betas (0, 0.9), 5 critic steps per generator step.
"""

from __future__ import annotations

import torch
from torch import nn

import gankernels
from gankernels.train.models import ModelSpec, critic_trunk
from gankernels.variants import Defaults

from ._common import spectral_normalise
from ._conditional import ConditionalSystem


class ProjectionCritic(nn.Module):
    """x, y -> psi(phi(x)) + <embed(y), phi(x)>, phi the trainer's critic body."""

    def __init__(self, spec: ModelSpec, n_classes: int) -> None:
        super().__init__()
        self.features, width = critic_trunk(spec)
        self.psi = nn.Linear(width, 1)
        self.embed = nn.Embedding(n_classes, width)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return self.psi(h).squeeze(1) + (self.embed(labels) * h).sum(1)


class CGAN(ConditionalSystem):
    def __init__(self) -> None:
        super().__init__(
            "cgan",
            "conditional GAN, projection discriminator (Miyato & Koyama 2018), hinge loss + SN",
            Defaults(
                n_critic=5, optimizer="adam", lr_critic=2e-4, lr_generator=2e-4, betas=(0.0, 0.9)
            ),
        )

    def build_critic(self, spec, n_classes):
        critic = ProjectionCritic(spec, n_classes)
        spectral_normalise(critic.features, self.name)
        spectral_normalise(critic.psi, self.name)
        # The embedding's rows are the projection's weights: normalised like a Linear's.
        torch.nn.utils.parametrizations.spectral_norm(critic.embed)
        return critic

    def train_step(self, run):
        G, D = run.nets["generator"], run.nets["critic"]
        for _ in range(run.defaults.n_critic):
            b = run.batch()
            with torch.no_grad():
                fake = G(b.z, b.labels)
            real_out, fake_out = D(b.x, b.labels), D(fake, b.labels)
            loss_c = gankernels.discriminator_loss(real_out, fake_out, kind="hinge", impl=run.impl)
            run.update("critic", loss_c)
        b = run.batch()
        loss_g = gankernels.generator_loss(
            D(G(b.z, b.labels), b.labels), kind="hinge", impl=run.impl
        )
        run.update("generator", loss_g)
        logs = {"real_score": real_out.detach().mean(), "fake_score": fake_out.detach().mean()}
        return loss_c.detach(), loss_g.detach(), logs


cgan = CGAN()
