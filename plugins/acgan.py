"""Auxiliary classifier GAN (Odena et al. 2017): the critic says both whether x is real and
which class it is,

    D(x) = (source logit s(x), class logits c(x)),    G(z, y) fed [z, one_hot(y)]
    L_D = BCE(s(x_r), 1) + BCE(s(G(z, y)), 0) + w (CE(c(x_r), y_r) + CE(c(G(z, y)), y))
    L_G = BCE(s(G(z, y)), 1) + w CE(c(G(z, y)), y)

the non-saturating form of the paper's L_S (the generator maximises log D rather than minimising
log(1 - D), as its code does), with class weight w = 1 (option class_weight) and y drawn from
the data's labels. The generated samples' class term in L_D is the paper's; it is what makes the
classifier reward class-typical samples, and the known price is ACGAN's lower diversity within
a class.

Defaults: DCGAN's Adam 2e-4, betas (0.5, 0.999), one critic step per generator step (the
paper's settings).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

import gankernels
from gankernels.train.models import ModelSpec, critic_trunk
from gankernels.variants import Defaults

from ._common import DCGAN_SCHEDULE, check_variant_options
from ._conditional import ConditionalSystem


class AuxiliaryClassifierCritic(nn.Module):
    """x -> (source logit [B], class logits [B, K]) from one shared body."""

    def __init__(self, spec: ModelSpec, n_classes: int) -> None:
        super().__init__()
        self.features, width = critic_trunk(spec)
        self.source = nn.Linear(width, 1)
        self.classes = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return self.source(h).squeeze(1), self.classes(h)


class ACGAN(ConditionalSystem):
    def __init__(self) -> None:
        super().__init__(
            "acgan",
            "auxiliary classifier GAN (Odena 2017): the critic also predicts the class",
            Defaults(
                **DCGAN_SCHEDULE,
                options={"class_weight": 1.0},
            ),
        )

    def check_defaults(self, defaults):
        check_variant_options(self, defaults, ("class_weight",))

    def build_critic(self, spec, n_classes):
        return AuxiliaryClassifierCritic(spec, n_classes)

    def train_step(self, run):
        G, D = run.nets["generator"], run.nets["critic"]
        w = run.defaults.options["class_weight"]
        for _ in range(run.defaults.n_critic):
            b = run.batch()
            with torch.no_grad():
                fake = G(b.z, b.labels)
            (real_s, real_c), (fake_s, fake_c) = D(b.x), D(fake)
            source = gankernels.discriminator_loss(
                real_s, fake_s, kind="nonsaturating", impl=run.impl
            )
            classes = F.cross_entropy(real_c, b.labels) + F.cross_entropy(fake_c, b.labels)
            loss_c = source + w * classes
            run.update("critic", loss_c)
            accuracy = (real_c.argmax(1) == b.labels).float().mean()
        b = run.batch()
        fake_s, fake_c = D(G(b.z, b.labels))
        source_g = gankernels.generator_loss(fake_s, kind="nonsaturating", impl=run.impl)
        class_g = F.cross_entropy(fake_c, b.labels)
        loss_g = source_g + w * class_g
        run.update("generator", loss_g)
        logs = {
            "critic_source": source.detach(),
            "critic_class": classes.detach(),
            "real_class_accuracy": accuracy.detach(),
            "generator_class": class_g.detach(),
        }
        return loss_c.detach(), loss_g.detach(), logs


acgan = ACGAN()
