"""`gankernels train | sample | evaluate`: the command-line face of the trainer.

    gankernels train --variant wgan-gp --data grid25 --out runs/wgan-gp-grid25
    gankernels sample --checkpoint runs/wgan-gp-grid25/checkpoint.pt --n 1000 --out samples.pt
    gankernels evaluate --checkpoint runs/wgan-gp-grid25/checkpoint.pt

Exit codes: 0 success, 1 the run diverged (NaN / Inf loss), 2 bad arguments or input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import torch

from .models import generate

IMPLS = ("auto", "cuda", "triton", "cpu", "ref")


def _parse_option(text: str) -> tuple[str, Any]:
    """KEY=VALUE, VALUE read as JSON when it parses (numbers, true/false) else as a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option expects KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    if not key:
        raise argparse.ArgumentTypeError(f"--option expects KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = {"True": True, "False": False}.get(raw, raw)
    return key, value


def _add_train(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train a GAN variant with the fused kernels",
        description="Train a GAN variant on built-in or user data. Everything not given comes "
        "from the variant's defaults (`gankernels variants`) and the data's preset. "
        "Run under `torchrun --nproc_per_node N` to train with N processes (DDP).",
    )
    p.add_argument("--variant", help="GAN variant name (default wgan-gp)")
    p.add_argument(
        "--data",
        help="ring8, grid25, swissroll, digits, or a PATH.pt / PATH.npy "
        "tensor file of shape N x D or N x C x H x W (default grid25)",
    )
    p.add_argument("--steps", type=int, help="generator steps (default: the data's preset)")
    p.add_argument("--batch-size", type=int, help="samples per step and process")
    p.add_argument("--out", help="run directory (default runs/VARIANT-DATA)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument(
        "--impl",
        choices=IMPLS,
        default=None,
        help="kernel implementation for the variant's ops (default: $GANKERNELS_IMPL, else auto)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from OUT/checkpoint.pt (exactly, same random streams)",
    )
    g = p.add_argument_group("variant overrides")
    g.add_argument("--n-critic", type=int, help="critic steps per generator step")
    g.add_argument("--optimizer", choices=("adam", "rmsprop"))
    g.add_argument("--lr-critic", type=float)
    g.add_argument("--lr-generator", type=float)
    g.add_argument("--betas", type=float, nargs=2, metavar=("BETA1", "BETA2"))
    g.add_argument("--penalty-weight", type=float)
    g.add_argument("--clip-value", type=float)
    g.add_argument(
        "--lr-decay",
        choices=("linear", "none"),
        help="learning-rate schedule: linear to 0 at the last step (default), none",
    )
    g.add_argument(
        "--ema-decay",
        type=float,
        help="keep a moving average of the generator's weights with this decay (e.g. 0.999) "
        "and evaluate, sample and save it (default: none)",
    )
    g.add_argument(
        "--option",
        type=_parse_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a variant-specific option (repeatable)",
    )
    m = p.add_argument_group("models and bookkeeping")
    m.add_argument("--z-dim", type=int)
    m.add_argument(
        "--hidden",
        type=int,
        help="hidden width of the critic, and of the generator unless "
        "--generator-hidden is given (default: the data's preset)",
    )
    m.add_argument(
        "--generator-hidden",
        type=int,
        help="hidden width of the generator (default: --hidden if given, else the "
        "preset's: 256 for point data, where the critic is 128 wide)",
    )
    m.add_argument("--depth", type=int, help="hidden layers of the MLPs")
    m.add_argument("--log-every", type=int, default=50)
    m.add_argument("--eval-every", type=int, help="default steps / 4")
    m.add_argument("--ckpt-every", type=int, help="default: --eval-every")
    m.add_argument("--n-eval", type=int, default=2500, help="samples per evaluation")
    m.add_argument("--no-progress", action="store_true", help="no progress bar")
    m.add_argument("--no-plots", action="store_true", help="no PNG plots")
    p.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    from .trainer import TrainConfig, TrainingDiverged, train

    cfg = TrainConfig(
        variant=args.variant,
        data=args.data,
        out=args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
        impl=args.impl,
        resume=args.resume,
        n_critic=args.n_critic,
        optimizer=args.optimizer,
        lr_critic=args.lr_critic,
        lr_generator=args.lr_generator,
        betas=tuple(args.betas) if args.betas else None,
        lr_decay=args.lr_decay,
        ema_decay=args.ema_decay,
        penalty_weight=args.penalty_weight,
        clip_value=args.clip_value,
        options=dict(args.option),
        z_dim=args.z_dim,
        hidden=args.hidden,
        generator_hidden=args.generator_hidden,
        depth=args.depth,
        log_every=args.log_every,
        eval_every=args.eval_every,
        ckpt_every=args.ckpt_every,
        n_eval=args.n_eval,
        progress=not args.no_progress,
        plots=not args.no_plots,
    )
    try:
        train(cfg)
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, KeyError, FileNotFoundError, FileExistsError, TypeError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    return 0


# --- sample / evaluate --------------------------------------------------------------------------


def load_generator(path: str, device: str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """The generator of a training checkpoint, in eval mode, and the checkpoint itself."""
    trained = Trained(path, device)
    if trained.system is not None:
        if "generator" not in trained.nets:
            raise ValueError(f"variant {trained.system.name!r} has no network called 'generator'")
        return trained.nets["generator"], trained.ckpt
    return trained.generator, trained.ckpt


class Trained:
    """A training checkpoint's networks in eval mode, ready to sample and evaluate: the
    generator (its moving average when the run kept one) for a plain variant; for a System, the
    networks it builds, with the variant from the registry and the run's data."""

    def __init__(self, path: str, device: str = "cpu") -> None:
        from .. import variants
        from .checkpoint import load_checkpoint
        from .data import load_data
        from .models import ModelSpec, build_models

        ckpt = load_checkpoint(path)
        self.ckpt = ckpt
        self.device = device
        self.spec = ModelSpec.from_dict(ckpt["model"])
        self.system: Any = None
        if "networks" not in ckpt:
            generator, _ = build_models(self.spec)
            # The moving average of the weights when the run kept one: that is the generator
            # it evaluated.
            generator.load_state_dict(ckpt.get("generator_ema") or ckpt["generator"])
            self.generator = generator.to(device).eval()
            return
        try:
            variant = variants.get(ckpt["variant"])
        except KeyError as exc:
            raise ValueError(
                f"checkpoint: variant {ckpt['variant']!r} is not installed ({exc.args[0]})"
            ) from None
        fields = {k: v for k, v in ckpt["variant_defaults"].items() if k != "points"}
        self.system = variant.configure(**fields)
        self.dataset = load_data(ckpt["config"]["data"], seed=ckpt["config"]["seed"])
        nets = self.system.build(self.spec, self.dataset)
        for name, net in nets.items():
            net.load_state_dict(ckpt["networks"][name])
        if ckpt.get("generator_ema") is not None:
            nets["generator"].load_state_dict(ckpt["generator_ema"])
        self.nets = {k: v.to(device).eval() for k, v in nets.items()}

    def generate(self, n: int, seed: int) -> torch.Tensor:
        """n samples (CPU float32) from the fixed noise stream `seed`."""
        if self.system is None:
            return generate(self.generator, self.spec.z_dim, n, seed, self.device)
        with torch.no_grad():
            return self.system.generate(self.nets, self.spec, self.dataset, n, seed, self.device)

    def evaluate(
        self, dataset: Any, reference: torch.Tensor, n: int, seed: int
    ) -> dict[str, float]:
        """The metrics against `dataset` (docs/math.md section 7, and a System's own)."""
        from .metrics import evaluate_samples

        if self.system is None:
            samples = self.generate(n, seed)
            return evaluate_samples(samples, dataset, reference, max_pairs=n)
        with torch.no_grad():
            return self.system.evaluate(
                self.nets, self.spec, dataset, reference, n, seed, self.device
            )


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def _add_sample(sub: Any) -> None:
    p = sub.add_parser(
        "sample",
        help="write samples from a trained generator",
        description="Generate N samples from a checkpoint's generator and save "
        "them as a tensor (.pt, torch.save) or array (.npy).",
    )
    p.add_argument("--checkpoint", required=True, help="DIR/checkpoint.pt (or DIR)")
    p.add_argument("--n", type=int, default=1000, help="number of samples (default 1000)")
    p.add_argument("--out", required=True, help="FILE.pt or FILE.npy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    p.set_defaults(run=run_sample)


def run_sample(args: argparse.Namespace) -> int:
    if args.n < 1:
        print(f"error: --n must be >= 1, got {args.n}", file=sys.stderr)
        return 2
    if not args.out.endswith((".pt", ".npy")):
        print(f"error: --out must end in .pt or .npy, got {args.out!r}", file=sys.stderr)
        return 2
    device = _device(args.device)
    try:
        trained = Trained(args.checkpoint, device)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ckpt = trained.ckpt
    samples = trained.generate(args.n, args.seed)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if args.out.endswith(".npy"):
        import numpy as np

        np.save(args.out, samples.numpy())
    else:
        torch.save(samples, args.out)
    print(
        f"wrote {args.n} samples of shape {list(samples.shape[1:])} to {args.out} "
        f"(checkpoint step {ckpt['step']})"
    )
    return 0


def _add_evaluate(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="print the sample-quality metrics of a checkpoint",
        description="Generate samples from a checkpoint and print the metrics "
        "of docs/math.md section 7 against the data.",
    )
    p.add_argument("--checkpoint", required=True, help="DIR/checkpoint.pt (or DIR)")
    p.add_argument("--data", help="data to compare with (default: the run's own)")
    p.add_argument("--n", type=int, default=2500, help="samples (default 2500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from .data import load_data, reference_sample
    from .metrics import format_metrics

    if args.n < 10:
        print(f"error: --n must be >= 10, got {args.n}", file=sys.stderr)
        return 2
    device = _device(args.device)
    try:
        trained = Trained(args.checkpoint, device)
        ckpt = trained.ckpt
        spec = args.data or ckpt["config"]["data"]
        dataset = load_data(spec, seed=ckpt["config"]["seed"])
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if tuple(trained.spec.sample_shape) != dataset.sample_shape:
        print(
            f"error: --data {spec!r} has samples of shape {list(dataset.sample_shape)}, the "
            f"generator makes {list(trained.spec.sample_shape)}",
            file=sys.stderr,
        )
        return 2
    reference = reference_sample(spec, dataset, args.n, args.seed)
    try:
        metrics = trained.evaluate(dataset, reference, args.n, args.seed)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"{ckpt['variant']} on {dataset.name}, step {ckpt['step']}, {args.n} samples:")
        print(format_metrics(metrics))
    return 0


def add_train_parsers(subparsers: Any) -> None:
    """Add `train`, `sample` and `evaluate` to the `gankernels` command line."""
    _add_train(subparsers)
    _add_sample(subparsers)
    _add_evaluate(subparsers)
