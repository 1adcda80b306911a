"""Progressive GAN (Karras et al. 2018): the generator and the critic grow from 2 x 2 images to
the data's resolution, each new level faded in,

    stages   2 x 2, 4 x 4, ..., H x W (square images, H a power of two >= 4): the run's generator
             steps split evenly over the stages
    fade-in  in the first half of every stage after the first, the new level's output is
             alpha new + (1 - alpha) upsample(previous level's output), alpha rising linearly
             from 0 to 1; the critic blends its input levels the same way and sees the real
             images at the same blend of the two resolutions
    loss     WGAN-GP (docs/math.md sections 2 and 3, lambda = 10) plus the drift term
             epsilon E[D(x_r)^2], epsilon = 0.001, which keeps the critic's output near 0

with pixelwise feature normalisation in the generator, as in the paper. Images at a stage's
resolution are upsampled (nearest) to the data's size and the critic average-pools them back,
so every tensor the trainer and the metrics see has the data's shape; the current stage and
alpha live in both networks' buffers (checkpointed), so `sample` draws at the resolution
reached. Left out: equalised learning rates and the minibatch standard-deviation layer (which
makes a sample's score depend on its batch, against the per-sample gradient penalty).

Defaults: the paper's Adam 1e-3, betas (0, 0.99), one critic step per generator step; images
only.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

import gankernels
from gankernels.variants import Defaults, System

from ._common import check_variant_options, generator_and_critic_optimizers

START = 2  # the first stage's resolution


def _levels(spec, variant: str) -> int:
    shape = spec.sample_shape
    ok = len(shape) == 3 and shape[1] == shape[2] and shape[1] >= 4
    ok = ok and 2 ** round(math.log2(shape[1])) == shape[1]
    if not ok:
        raise ValueError(
            f"variant {variant!r} grows square images whose side is a power of two >= 4, "
            f"got samples of shape {list(shape)}"
        )
    return int(math.log2(shape[1] // START)) + 1


def _pixel_norm(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.square().mean(1, keepdim=True) + 1e-8)


class _Growing(nn.Module):
    """The stage and alpha, as buffers so that they are checkpointed with the weights."""

    def __init__(self, levels: int, size: int) -> None:
        super().__init__()
        self.levels, self.size = levels, size
        self.register_buffer("stage", torch.zeros((), dtype=torch.long))
        self.register_buffer("alpha", torch.ones(()))

    def grow_to(self, stage: int, alpha: float) -> None:
        self.stage.fill_(stage)
        self.alpha.fill_(alpha)

    def resolution(self, stage: int) -> int:
        return START * 2**stage


class GrowingGenerator(_Growing):
    def __init__(self, spec, levels: int) -> None:
        c, size = spec.sample_shape[0], spec.sample_shape[1]
        super().__init__(levels, size)
        w = max(spec.generator_width // 4, 16)
        self.stem = nn.Linear(spec.z_dim, w * START * START)
        self.width = w
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(w, w, 3, padding=1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(w, w, 3, padding=1),
                nn.LeakyReLU(0.2),
            )
            for _ in range(levels - 1)
        )
        self.to_image = nn.ModuleList(nn.Conv2d(w, c, 1) for _ in range(levels))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        stage, alpha = int(self.stage), float(self.alpha)
        h = _pixel_norm(F.leaky_relu(self.stem(_pixel_norm(z)), 0.2))
        h = h.reshape(z.shape[0], self.width, START, START)
        previous = h
        for block in self.blocks[:stage]:
            previous = h
            h = _pixel_norm(block(h))
        out = self.to_image[stage](h)
        if stage > 0 and alpha < 1:
            low = F.interpolate(self.to_image[stage - 1](previous), scale_factor=2)
            out = alpha * out + (1 - alpha) * low
        return F.interpolate(out, scale_factor=self.size // self.resolution(stage))


class GrowingCritic(_Growing):
    def __init__(self, spec, levels: int) -> None:
        c, size = spec.sample_shape[0], spec.sample_shape[1]
        super().__init__(levels, size)
        w = max(spec.hidden // 4, 16)
        self.from_image = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, w, 1), nn.LeakyReLU(0.2)) for _ in range(levels)
        )
        # blocks[i] takes level i + 1 down to level i
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(w, w, 3, padding=1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(w, w, 3, padding=1),
                nn.LeakyReLU(0.2),
                nn.AvgPool2d(2),
            )
            for _ in range(levels - 1)
        )
        self.head = nn.Sequential(
            nn.Conv2d(w, w, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(w * START * START, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stage, alpha = int(self.stage), float(self.alpha)
        x = F.avg_pool2d(x, self.size // self.resolution(stage))
        h = self.from_image[stage](x)
        if stage > 0:
            h = self.blocks[stage - 1](h)
            if alpha < 1:
                low = self.from_image[stage - 1](F.avg_pool2d(x, 2))
                h = alpha * h + (1 - alpha) * low
        for block in reversed(self.blocks[: max(stage - 1, 0)]):
            h = block(h)
        return self.head(h).squeeze(1)


def schedule(step: int, steps: int, levels: int) -> tuple[int, float]:
    """(stage, alpha) at generator step `step` of `steps`: equal stages, each after the first
    fading in over its first half."""
    length = max(steps / levels, 1.0)
    stage = min(int(step // length), levels - 1)
    progress = (step - stage * length) / length
    alpha = 1.0 if stage == 0 else min(1.0, 2.0 * progress)
    return stage, alpha


def real_at(x: torch.Tensor, stage: int, alpha: float, size: int) -> torch.Tensor:
    """The real images as the networks see them at (stage, alpha): at the stage's resolution,
    blended with the previous one's during the fade-in, upsampled back to the data's size."""
    res = START * 2**stage
    x = F.avg_pool2d(x, size // res)
    if stage > 0 and alpha < 1:
        x = alpha * x + (1 - alpha) * F.interpolate(F.avg_pool2d(x, 2), scale_factor=2)
    return F.interpolate(x, scale_factor=size // res)


class ProGAN(System):
    def __init__(self) -> None:
        super().__init__(
            "progan",
            "progressive GAN (Karras 2018): grows from 2x2 to full size with fade-in, WGAN-GP",
            Defaults(
                n_critic=1,
                optimizer="adam",
                lr_critic=1e-3,
                lr_generator=1e-3,
                betas=(0.0, 0.99),
                penalty_weight=10.0,
                options={"drift": 1e-3},
            ),
        )

    def check_defaults(self, defaults):
        if defaults.penalty_weight is None:
            raise ValueError(f"variant {self.name!r} needs a penalty_weight, got None")
        check_variant_options(self, defaults, ("drift",))

    def build(self, spec, data):
        levels = _levels(spec, self.name)
        return {"generator": GrowingGenerator(spec, levels), "critic": GrowingCritic(spec, levels)}

    def optimizers(self):
        return generator_and_critic_optimizers()

    def train_step(self, run):
        G, D = run.nets["generator"], run.nets["critic"]
        stage, alpha = schedule(run.step, run.steps, G.levels)
        G.grow_to(stage, alpha)
        D.grow_to(stage, alpha)
        d = run.defaults
        for _ in range(d.n_critic):
            b = run.batch()
            real = real_at(b.x, stage, alpha, G.size)
            with torch.no_grad():
                fake = G(b.z)
            real_out = D(real)
            loss_c = gankernels.discriminator_loss(
                real_out, D(fake), kind="wasserstein", impl=run.impl
            )
            penalty, norms = gankernels.gradient_penalty(
                D, real, fake, weight=d.penalty_weight, return_norms=True, impl=run.impl
            )
            loss_c = loss_c + penalty + d.options["drift"] * real_out.square().mean()
            run.update("critic", loss_c)
        b = run.batch()
        loss_g = gankernels.generator_loss(D(G(b.z)), kind="wasserstein", impl=run.impl)
        run.update("generator", loss_g)
        logs = {
            "stage": torch.tensor(float(stage)),
            "alpha": torch.tensor(alpha),
            "grad_norm": norms.detach().mean(),
        }
        return loss_c.detach(), loss_g.detach(), logs


progan = ProGAN()
