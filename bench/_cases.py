"""What the benchmarks measure: the device, the size sets, the names in the table and the
inputs of each differentiable-op group.

Inputs come from `gankernels.testing.sample_inputs` (the factory the tests use); this module only
picks the benchmark sizes out of it. The critic models and the parameter lists to clip are in
`_critics.py`, the timed callables in `_ops.py` (single ops) and `_steps.py` (whole critic
steps), and timing and memory measurement in `_measure.py`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

import gankernels.ops
from gankernels import testing

# --- device and size sets ---------------------------------------------------------------------


def bench_device() -> str:
    """The device the suite measures: GANKERNELS_BENCH_DEVICE, else CUDA when a GPU is visible."""
    forced = os.environ.get("GANKERNELS_BENCH_DEVICE")
    if forced:
        if forced not in ("cpu", "cuda"):
            raise ValueError(f"GANKERNELS_BENCH_DEVICE must be 'cpu' or 'cuda', got {forced!r}")
        if forced == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("GANKERNELS_BENCH_DEVICE=cuda but torch sees no CUDA GPU")
        return forced
    return "cuda" if torch.cuda.is_available() else "cpu"


def quick_mode(config=None) -> bool:
    """The CI smoke mode: env GANKERNELS_BENCH_QUICK=1 or `pytest bench/ --quick`."""
    if os.environ.get("GANKERNELS_BENCH_QUICK", "") not in ("", "0"):
        return True
    return bool(config is not None and config.getoption("--quick", default=False))


def size_set(device: str, quick: bool) -> str:
    """ "quick" (smallest sizes, one round), "cpu" (small set for 2 cores) or "gpu" (full)."""
    if quick:
        return "quick"
    return "gpu" if device == "cuda" else "cpu"


# Images: launch-bound 64x3x32x32 and bandwidth-bound 256x3x64x64 (and larger on a GPU).
IMAGE_SIZES = {
    "quick": [(64, 3, 32, 32)],
    "cpu": [(64, 3, 32, 32), (256, 3, 64, 64)],
    "gpu": [(64, 3, 32, 32), (256, 3, 64, 64), (512, 3, 128, 128)],
}
# Critic outputs: B = 64 and 256 scores (launch-bound), and a PatchGAN critic's 30x30 map per
# sample (230k outputs: where the math, not the call overhead, sets the time).
LOSS_SIZES = {
    "quick": [(64,)],
    "cpu": [(64,), (256,), (256, 1, 30, 30)],
    "gpu": [(64,), (256,), (256, 1, 30, 30)],
}
DTYPES = {
    "quick": [torch.float32],
    "cpu": [torch.float32, torch.bfloat16],
    "gpu": [torch.float32, torch.bfloat16],
}
# mmd2: (B, D), the same B for both batches. B >= 1024 is where the CPU target (2x eager) is
# set; D from toy points (2) to a critic's feature vector (1024).
MMD_SIZES = {
    "quick": [(256, 16)],
    "cpu": [(64, 2), (1024, 2), (1024, 64), (1024, 1024), (4096, 2), (4096, 64)],
    "gpu": [(64, 2), (1024, 2), (1024, 64), (1024, 1024), (4096, 2), (4096, 64), (4096, 1024)],
}
# minimax, wasserstein, hinge and one f-divergence (KL: f*(g_f(v)) = exp(v - 1)).
LOSS_KINDS = ("minimax", "wasserstein", "hinge", "kl")
CLIP_LISTS = {
    "quick": ["dcgan64", "mlp3x512", "small100"],
    "cpu": ["dcgan64", "mlp3x512", "small100"],
    "gpu": ["dcgan64", "mlp3x512", "small100"],
}
# The clip bound of the clip benchmarks and of the WGAN critic step.
CLIP_C = 0.01
# Whole critic steps: (model, batch size).
GP_STEPS = {
    "quick": [("mlp3x512", 256), ("dcgan32", 64)],
    "cpu": [("mlp3x512", 256), ("dcgan32", 64)],
    "gpu": [("mlp3x512", 256), ("dcgan32", 64)],
}
CLIP_STEPS = {
    "quick": [("mlp3x512", 256), ("dcgan32", 64)],
    "cpu": [("mlp3x512", 256), ("dcgan32", 64)],
    "gpu": [("mlp3x512", 256), ("dcgan32", 64), ("dcgan64", 64)],
}


def fused_backends(device: str) -> list[str]:
    """The fused implementations on `device`: `gankernels.ops.available` less the reference.

    Triton on a CPU would run under its interpreter, which measures Python, not a kernel.
    """
    found = [b for b in gankernels.ops.available(device) if b != "ref"]
    if device == "cpu":
        found = [b for b in found if b != "triton"]
    return found


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def shape_name(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape)) if len(shape) > 1 else f"B={shape[0]}"


OP_LABEL = {"gp_interpolate": "interpolation", "norm_penalty": "norm_penalty"}


def op_label(op: str, kind: str = "") -> str:
    """The op's name in the table: interpolation, norm_penalty, loss:<kind>."""
    return f"loss:{kind}" if op == "adversarial_loss" else OP_LABEL[op]


def op_groups(config=None) -> list[tuple]:
    """(op, kind, shape, dtype) of every differentiable-op group in this run's size set."""
    sset = size_set(bench_device(), quick_mode(config))
    found = []
    for op in ("gp_interpolate", "norm_penalty"):
        for shape in IMAGE_SIZES[sset]:
            for dtype in DTYPES[sset]:
                found.append((op, "", shape, dtype))
    for kind in LOSS_KINDS:
        for shape in LOSS_SIZES[sset]:
            for dtype in DTYPES[sset]:
                found.append(("adversarial_loss", kind, shape, dtype))
    return found


def group_id(group: tuple) -> str:
    op, kind, shape, dtype = group
    return f"{op_label(op, kind)}-{shape_name(shape)}-{dtype_name(dtype)}"


# --- inputs -----------------------------------------------------------------------------------


def _first(
    op: str, device: str, dtype: torch.dtype, shape: Sequence[int], label_has: str = ""
) -> tuple:
    """The first case of the shared factory for one shape: contiguous layout, default params."""
    for label, args, _kwargs in testing.sample_inputs(op, device, dtype, shapes=[tuple(shape)]):
        if label_has in label:
            return args
    raise LookupError(f"gankernels.testing.sample_inputs({op!r}) has no case {label_has!r}")


@dataclass
class OpCase:
    """One benchmark group of a differentiable op: its inputs, the upstream gradient, and the
    bytes a single fused forward+backward must at least read and write (the copy floor)."""

    op: str
    args: tuple
    grad_inputs: tuple  # the tensors whose gradients the backward computes
    grad_out: Optional[torch.Tensor]  # upstream gradient (other than ones), None for a scalar
    bytes_moved: int

    @property
    def inputs(self) -> list[torch.Tensor]:
        return [a for a in self.args if isinstance(a, torch.Tensor)]


def op_case(
    op: str, device: str, dtype: torch.dtype, shape: Sequence[int], kind: str = ""
) -> OpCase:
    """Inputs of one (op, size, dtype) group, from the factory the tests share.

    bytes_moved counts the minimum traffic of forward+backward:
      gp_interpolate  read real, fake, write x_hat; read grad, write both input grads: 6 N
      norm_penalty    read g; read g, write dg: 3 N
      adversarial_loss read v_r, v_g; read both, write both gradients: 6 B
    """
    size = torch.Size(shape).numel() * torch.empty((), dtype=dtype).element_size()
    if op == "gp_interpolate":
        real, fake, eps = _first(op, device, dtype, shape, "contiguous")
        # eps is drawn, never learnt: its gradient (an extra read of real and fake) is not taken.
        real.requires_grad_(True)
        fake.requires_grad_(True)
        grad_out = testing.make(shape, dtype, device, seed=7)
        return OpCase(op, (real, fake, eps), (real, fake), grad_out, 6 * size)
    if op == "norm_penalty":
        args = _first(op, device, dtype, shape, "contiguous-K1.0-w10.0-osFalse-s1.0")
        args[0].requires_grad_(True)
        return OpCase(op, args, (args[0],), None, 3 * size)
    if op == "adversarial_loss":
        real, fake = _first(op, device, dtype, shape, f"-{kind}-critic")[:2]
        # The loss at its defaults (mean, no weights): what the eager baselines compute.
        args = (real, fake, *testing.adversarial_args(kind, "critic"))
        real.requires_grad_(True)
        fake.requires_grad_(True)
        return OpCase(op, args, (args[0], args[1]), None, 6 * size)
    raise ValueError(f"op must be gp_interpolate, norm_penalty or adversarial_loss, got {op!r}")
