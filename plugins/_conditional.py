"""What the class-conditional systems (cgan, acgan) share: a generator G(z, y) fed one-hot
labels, samples drawn for balanced labels (sample i has class i mod K), and the label accuracy
of docs/math.md section 7 beside the unconditional metrics."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gankernels.train.metrics import evaluate_samples, label_accuracy
from gankernels.train.models import (
    ConditionalGenerator,
    ModelSpec,
    balanced_labels,
    generate_conditional,
)
from gankernels.variants import System

from ._common import generator_and_critic_optimizers


class ConditionalSystem(System):
    """A generator G(z, y) and a critic D(x, y) (whatever it returns), one optimiser each."""

    def __init__(self, name: str, description: str, defaults: Any) -> None:
        super().__init__(name, description, defaults, needs=("labels",))

    def build_critic(self, spec: ModelSpec, n_classes: int) -> nn.Module:
        raise NotImplementedError

    def build(self, spec, data):
        n_classes = data.n_classes
        return {
            "generator": ConditionalGenerator(spec, n_classes),
            "critic": self.build_critic(spec, n_classes),
        }

    def optimizers(self):
        return generator_and_critic_optimizers()

    def generate(self, nets, spec, data, n, seed, device="cpu"):
        labels = balanced_labels(n, data.n_classes)
        return generate_conditional(nets["generator"], spec.z_dim, labels, seed, device)

    def evaluate(self, nets, spec, data, reference, n, seed, device="cpu"):
        samples = self.generate(nets, spec, data, n, seed, device)
        if not torch.isfinite(samples).all():
            return {"finite": 0.0}
        metrics = evaluate_samples(samples, data, reference, max_pairs=n)
        labels = balanced_labels(n, data.n_classes)
        metrics["label_accuracy"] = label_accuracy(samples, labels, data)
        return metrics
