"""What the image-to-image systems (pix2pix, cyclegan) share: an encoder-decoder generator with
skip connections (a U-Net, as pix2pix's) and a PatchGAN critic, sized for the trainer's
`ModelSpec` (images whose height and width divide by 4), and the translation metrics."""

from __future__ import annotations

import torch
from torch import nn

from gankernels.train.metrics import digit_labels_of, is_digits
from gankernels.train.models import ModelSpec


def image_channels(spec: ModelSpec, variant: str) -> int:
    """The channel count of `spec`'s images; ValueError unless they are C x H x W with H and W
    divisible by 4 (two stride-2 levels)."""
    if not spec.is_conv:
        raise ValueError(
            f"variant {variant!r} translates images of shape C x H x W with H and W divisible "
            f"by 4, got samples of shape {list(spec.sample_shape)}"
        )
    return spec.sample_shape[0]


def _width(spec: ModelSpec) -> int:
    return max(spec.generator_width // 4, 16)


class EncoderDecoder(nn.Module):
    """x [B, c_in, H, W] -> [B, c_out, H, W]: two stride-2 convolutions down, a 3x3 convolution
    at H/4, two transposed convolutions up, the first level's features concatenated to the
    last up-sampling's input (the U-Net skip); tanh output for data in [-1, 1]."""

    def __init__(self, spec: ModelSpec, c_in: int, c_out: int) -> None:
        super().__init__()
        w = _width(spec)
        self.down1 = nn.Conv2d(c_in, w, 4, stride=2, padding=1)
        self.down2 = nn.Conv2d(w, 2 * w, 4, stride=2, padding=1)
        self.middle = nn.Conv2d(2 * w, 2 * w, 3, padding=1)
        self.up2 = nn.ConvTranspose2d(4 * w, w, 4, stride=2, padding=1)
        self.up1 = nn.ConvTranspose2d(2 * w, c_out, 4, stride=2, padding=1)
        self.act = nn.LeakyReLU(0.2)
        self.bounded = spec.bounded

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1 = self.act(self.down1(x))
        d2 = self.act(self.down2(d1))
        m = torch.relu(self.middle(d2))
        u2 = torch.relu(self.up2(torch.cat([m, d2], 1)))
        out = self.up1(torch.cat([u2, d1], 1))
        return torch.tanh(out) if self.bounded else out


class ResidualTranslator(nn.Module):
    """x [B, c_in, H, W] -> [B, c_out, H, W] at full resolution: a 3x3 convolution, `blocks`
    residual blocks (two 3x3 convolutions and the identity), a 3x3 convolution to c_out; tanh
    output for data in [-1, 1]. CycleGAN's ResNet generator without its down- and up-sampling,
    which 8 x 8 images do not need."""

    def __init__(self, spec: ModelSpec, c_in: int, c_out: int, blocks: int = 2) -> None:
        super().__init__()
        w = _width(spec)
        self.head = nn.Sequential(nn.Conv2d(c_in, w, 3, padding=1), nn.ReLU())
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(w, w, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(w, w, 3, padding=1),
            )
            for _ in range(blocks)
        )
        self.tail = nn.Conv2d(w, c_out, 3, padding=1)
        self.bounded = spec.bounded

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        for block in self.blocks:
            h = torch.relu(h + block(h))
        out = self.tail(h)
        return torch.tanh(out) if self.bounded else out


class PatchCritic(nn.Module):
    """x [B, c_in, H, W] -> scores [B, 1, H/4, W/4]: one score per overlapping patch (PatchGAN,
    Isola et al. 2017), no normalisation."""

    def __init__(self, spec: ModelSpec, c_in: int) -> None:
        super().__init__()
        w = max(spec.hidden // 4, 16)
        self.net = nn.Sequential(
            nn.Conv2d(c_in, w, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def source_rows(n: int, rows: int, seed: int) -> torch.Tensor:
    """n row indices of a data set of `rows`, drawn with replacement from a seeded stream: the
    sources translated for `sample` and the metrics."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(rows, (n,), generator=gen)


@torch.no_grad()
def translate(net: nn.Module, sources: torch.Tensor, device, chunk: int = 1024) -> torch.Tensor:
    """net(sources) in chunks on `device`; CPU float32."""
    out = [
        net(sources[i : i + chunk].to(device)).float().cpu() for i in range(0, len(sources), chunk)
    ]
    return torch.cat(out)


def translation_metrics(fake: torch.Tensor, target: torch.Tensor, labels, data) -> dict:
    """L1 to the paired target, and the label accuracy of the translations when the digits
    classifier applies (docs/math.md section 9)."""
    metrics = {"l1": float((fake - target).abs().mean())}
    if is_digits(data):
        agree = digit_labels_of(fake) == labels
        metrics["label_accuracy"] = 100.0 * float(agree.double().mean())
    return metrics
