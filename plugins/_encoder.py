"""What the encoder GANs (aae, bigan) share: an encoder x -> z built on the trainer's critic
body, and their metrics (docs/math.md section 9): how well x survives x -> z -> x, and how close
the codes E(x) are to the prior N(0, I)."""

from __future__ import annotations

import torch
from torch import nn

from gankernels.train.metrics import HQ_STDS, digit_labels_of, evaluate_samples, is_digits, mmd2
from gankernels.train.models import ModelSpec, critic_trunk
from gankernels.variants import System


class Encoder(nn.Module):
    """x -> z [B, z_dim]: the trainer's critic body and a linear map to the code."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.features, width = critic_trunk(spec)
        self.code = nn.Linear(width, spec.z_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.code(self.features(x))


@torch.no_grad()
def encoder_metrics(
    encoder: nn.Module, decoder: nn.Module, data, n: int, seed: int, device
) -> dict[str, float]:
    """On n rows drawn with `seed` (each row at most once: a repeated row would pass for a
    perfect match in latent_mmd2; so at most the data's row count):
    recon_mse       mean squared error of decoder(encoder(x)) per element
    recon_accuracy  % of reconstructions of x's class (the digits classifier, or the nearest
                    mode within 3 std on ring8 / grid25), where the data tells
    latent_mmd2     docs/math.md section 7's MMD^2 between the codes and as many N(0, I) draws
    """
    gen = torch.Generator().manual_seed(seed)
    rows = torch.randperm(data.data.shape[0], generator=gen)[:n]
    x = data.data[rows]
    n = len(rows)
    codes = torch.cat(
        [encoder(x[i : i + 1024].to(device)).float().cpu() for i in range(0, n, 1024)]
    )
    recon = torch.cat(
        [decoder(codes[i : i + 1024].to(device)).float().cpu() for i in range(0, n, 1024)]
    )
    prior = torch.randn(codes.shape, generator=gen)
    metrics = {
        "recon_mse": float((recon - x).square().mean()),
        "latent_mmd2": mmd2(codes, prior),
    }
    if is_digits(data):
        agree = digit_labels_of(recon) == data.labels[rows]
        metrics["recon_accuracy"] = 100.0 * float(agree.double().mean())
    elif data.centres is not None and data.labels is not None:
        dist = torch.cdist(recon.double(), data.centres.double())
        nearest_dist, nearest = dist.min(1)
        agree = (nearest == data.labels[rows]) & (nearest_dist <= HQ_STDS * data.std)
        metrics["recon_accuracy"] = 100.0 * float(agree.double().mean())
    return metrics


class EncoderSystem(System):
    """A system with an "encoder" and a "generator" (its decoder): evaluated on docs/math.md
    section 7's metrics of the generated samples and `encoder_metrics`."""

    def evaluate(self, nets, spec, data, reference, n, seed, device="cpu"):
        samples = self.generate(nets, spec, data, n, seed, device)
        metrics = evaluate_samples(samples, data, reference, max_pairs=n)
        metrics.update(encoder_metrics(nets["encoder"], nets["generator"], data, n, seed, device))
        return metrics
