"""Regularisers of the critic's outputs: LeCam (docs/math.md section 2).

LeCam (Tseng et al. 2021) keeps exponential moving averages of the critic's mean output on real
and on generated samples, alpha_R and alpha_F, and penalises outputs that cross the other
side's average:

    R = E_real[relu(D(x) - alpha_F)^2] + E_fake[relu(alpha_R - D(G(z)))^2]

The averages are updated by each call, from the current batch, before R is formed, as in the
authors' code and StudioGAN. They live in 0-dim float32 buffers on the scores' device and are
updated there, so a call never synchronises with the host (StudioGAN reads each mean with
`.item()`, once per step).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LeCam"]


def _scores(name: str, t: object) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(
            f"LeCam: {name} must be a torch.Tensor of critic outputs, got {type(t).__name__}"
        )
    if not t.is_floating_point():
        raise TypeError(f"LeCam: {name} must be floating point, got {t.dtype}")
    if t.numel() == 0:
        raise ValueError(f"LeCam: {name} must hold at least one output, got shape {list(t.shape)}")
    return t


class LeCam(nn.Module):
    """R = E[relu(real_scores - alpha_F)^2] + E[relu(alpha_R - fake_scores)^2].

    alpha_R and alpha_F are moving averages, with `decay` (0.99, the authors'), of the batch
    means of `real_scores` and `fake_scores` over the calls so far, this one included. With
    `debias=True` (the authors' TensorFlow code, zero_debias) the average is divided by
    1 - decay^t after t calls, so the first call's average is that batch's mean; with
    `debias=False` it starts from 0, as StudioGAN's does.

    Multiply R by your weight and add it to the critic's loss. The gradient reaches the scores,
    not the averages (they are constants of each step). The buffers (ema_real, ema_fake,
    steps) are part of the module's state_dict, so a checkpoint resumes them exactly; under
    DistributedDataParallel each rank averages its own batches.
    """

    def __init__(self, decay: float = 0.99, debias: bool = True) -> None:
        super().__init__()
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay < 1:
            raise ValueError(f"LeCam: decay must be a number in [0, 1), got {decay!r}")
        self.decay = float(decay)
        self.debias = bool(debias)
        self.register_buffer("ema_real", torch.zeros((), dtype=torch.float32))
        self.register_buffer("ema_fake", torch.zeros((), dtype=torch.float32))
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    def extra_repr(self) -> str:
        return f"decay={self.decay}, debias={self.debias}"

    def forward(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        real = _scores("real_scores", real_scores)
        fake = _scores("fake_scores", fake_scores)
        if real.device != fake.device:
            raise ValueError(
                f"LeCam: real_scores and fake_scores must be on one device, got {real.device} "
                f"and {fake.device}"
            )
        if self.ema_real.device != real.device:
            # Follow the scores (a non-blocking copy when the module was not moved with them).
            for name in ("ema_real", "ema_fake", "steps"):
                setattr(self, name, getattr(self, name).to(real.device))
        opmath = torch.promote_types(real.dtype, torch.float32)
        with torch.no_grad():
            self.steps += 1
            for ema, scores in ((self.ema_real, real), (self.ema_fake, fake)):
                ema.lerp_(scores.detach().to(torch.float32).mean(), 1.0 - self.decay)
            alpha_real, alpha_fake = self.ema_real, self.ema_fake
            if self.debias:
                correction = 1.0 - torch.pow(self.decay, self.steps.to(torch.float64))
                alpha_real = alpha_real / correction.to(torch.float32)
                alpha_fake = alpha_fake / correction.to(torch.float32)
        over_real = torch.relu(real.to(opmath) - alpha_fake.to(opmath)).square().mean()
        under_fake = torch.relu(alpha_real.to(opmath) - fake.to(opmath)).square().mean()
        return over_real + under_fake
