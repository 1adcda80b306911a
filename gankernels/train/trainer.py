"""The GAN trainer: models, optimisers, the n_critic schedule, logging, evaluation, checkpoints.

One generator step is `n_critic` critic steps followed by one generator step (WGAN's Algorithm
1); `steps` counts generator steps. Per critic step the trainer draws a real batch and z, calls
`variant.critic_loss`, backpropagates, steps the critic's optimiser, increments
`state["step"]` (critic steps so far) and calls `variant.after_critic_step`; per generator step
it calls `variant.generator_loss`. The variant owns the losses, penalties and clipping; the
trainer owns everything else.

Under `torchrun --nproc_per_node N` (WORLD_SIZE > 1 in the environment) the trainer joins a
torch.distributed group (gloo on CPU, NCCL on GPU) and wraps the critic and the generator in
DistributedDataParallel. Each rank trains on its own shard of the data (every N-th row) with its
own z, computes its penalty on its own batch, and DDP averages the gradients, so every rank
holds the same parameters. Only rank 0 logs, evaluates, plots and writes checkpoints.

Losses are checked for NaN / Inf at every log interval and before every checkpoint (one host
synchronisation per interval, not per step): a non-finite loss stops the run with
`TrainingDiverged` and leaves the last good checkpoint in place.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .. import variants as variant_registry
from ..ops import resolve
from .checkpoint import (
    CHECKPOINT_NAME,
    FORMAT_VERSION,
    capture_rng,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from .data import DataSet, load_data, reference_sample
from .metrics import N_EVAL, evaluate_samples, format_metrics
from .models import ModelSpec, build_models, generate
from .plots import plot_curves, plot_images, plot_points, read_metrics

DEVICES = ("auto", "cpu", "cuda")
LR_DECAYS = ("linear", "none")
METRICS_NAME = "metrics.jsonl"
SUMMARY_NAME = "summary.json"

# Settings that define a run; --resume takes them from the checkpoint and refuses a different
# value given explicitly (a resumed run with another learning rate is a different experiment).
RUN_FIELDS = (
    "variant",
    "data",
    "seed",
    "batch_size",
    "z_dim",
    "hidden",
    "generator_hidden",
    "depth",
    "n_critic",
    "optimizer",
    "lr_critic",
    "lr_generator",
    "betas",
    "penalty_weight",
    "clip_value",
    "options",
    "lr_decay",
)
VARIANT_FIELDS = (
    "n_critic",
    "optimizer",
    "lr_critic",
    "lr_generator",
    "betas",
    "penalty_weight",
    "clip_value",
)


@dataclass(frozen=True)
class Preset:
    """The trainer's defaults for one kind of data (tuned for a 2-core CPU, see README)."""

    steps: int
    batch_size: int
    z_dim: int
    hidden: int  # the critic's width (and the generator's, unless generator_hidden is set)
    depth: int
    generator_hidden: Optional[int] = None


POINTS_PRESET = Preset(
    steps=2000, batch_size=256, z_dim=2, hidden=128, depth=3, generator_hidden=256
)
IMAGES_PRESET = Preset(steps=2000, batch_size=64, z_dim=32, hidden=256, depth=2)


def default_preset(dataset: DataSet) -> Preset:
    """Defaults for point sets (ReLU MLPs of 3 hidden layers as in gan_toy.py: a 128-wide
    critic, a 256-wide generator) or images (small conv models).

    Measured on grid25 (wgan-gp, n_critic 5, Adam 1e-3 both, batch 256, 2,000 steps, seed 0,
    one thread of a shared 2-core CPU, 2026-11-23; metrics of docs/math.md section 7):

        generator / critic width   HQ %    train s
        128 / 128                  21.1    111
        128 / 128, batch 1024      27.9    274
        256 / 256                  67.7    256
        256 / 128                  67.8    130
        512 / 128                  79.5    203

    The generator's width is what limits how tight the modes get; the critic's is not, and the
    critic's five penalised steps per generator step are most of the cost (the rows from 256 on
    share one draw of initial weights). With Adam 3e-3, wgan-gp's point-data default
    (plugins/wgan.py), 256 / 128 reaches 25/25 modes and 88.8 % in about 130 s.
    """
    return POINTS_PRESET if dataset.kind == "points" else IMAGES_PRESET


@dataclass
class TrainConfig:
    """A training run. None means "the default": the variant's for its hyper-parameters, the
    data's preset for steps / batch size / model size."""

    variant: Optional[str] = None  # default "wgan-gp"
    data: Optional[str] = None  # default "grid25"
    out: Optional[str] = None  # default runs/{variant}-{data}
    steps: Optional[int] = None  # generator steps
    batch_size: Optional[int] = None  # per process
    seed: Optional[int] = None  # default 0
    device: str = "auto"
    impl: str = "auto"
    resume: bool = False
    # variant overrides
    n_critic: Optional[int] = None
    optimizer: Optional[str] = None
    lr_critic: Optional[float] = None
    lr_generator: Optional[float] = None
    betas: Optional[tuple[float, float]] = None
    penalty_weight: Optional[float] = None
    clip_value: Optional[float] = None
    options: dict[str, Any] = field(default_factory=dict)
    lr_decay: Optional[str] = None  # "linear" (default: to 0 at the last step) | "none"
    # models
    z_dim: Optional[int] = None
    hidden: Optional[int] = None  # the critic's width, and the generator's by default
    generator_hidden: Optional[int] = None  # default: `hidden` if given, else the preset's
    depth: Optional[int] = None
    # bookkeeping
    log_every: int = 50
    eval_every: Optional[int] = None  # default steps // 4
    ckpt_every: Optional[int] = None  # default eval_every
    n_eval: int = N_EVAL
    progress: bool = True
    plots: bool = True
    verbose: bool = True

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["betas"] is not None:
            d["betas"] = [float(b) for b in d["betas"]]
        d["options"] = dict(d["options"])
        return d


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf; the last good checkpoint was kept."""


@dataclass
class TrainResult:
    out: str
    step: int
    seconds: float  # training time of this process's run (evaluation and plots excluded)
    metrics: dict[str, float]
    generator: nn.Module
    critic: nn.Module
    config: dict[str, Any]


def _check_config(cfg: TrainConfig) -> None:
    def positive_int(name: str, value: Any, allow_none: bool = True) -> None:
        if value is None and allow_none:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")

    for name in (
        "steps",
        "batch_size",
        "z_dim",
        "hidden",
        "generator_hidden",
        "depth",
        "eval_every",
        "ckpt_every",
    ):
        positive_int(name, getattr(cfg, name))
    positive_int("log_every", cfg.log_every, allow_none=False)
    if cfg.batch_size is not None and cfg.batch_size < 2:
        raise ValueError(f"batch_size must be >= 2, got {cfg.batch_size}")
    if cfg.n_eval < 10:
        raise ValueError(f"n_eval must be >= 10, got {cfg.n_eval}")
    if cfg.lr_decay is not None and cfg.lr_decay not in LR_DECAYS:
        raise ValueError(f"lr_decay must be one of {', '.join(LR_DECAYS)}, got {cfg.lr_decay!r}")
    if cfg.device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {cfg.device!r}")


# --- distributed --------------------------------------------------------------------------------


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owned: bool = False  # this trainer created the process group and destroys it

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _dist_from_env() -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    return _Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def _pick_device(name: str, d: _Dist) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was asked for, but torch sees no CUDA GPU")
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        index = d.local_rank % max(torch.cuda.device_count(), 1)
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device("cpu")


def _init_dist(d: _Dist, device: torch.device) -> None:
    if not d.active:
        return
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        d.owned = True
    if dist.get_world_size() != d.world or dist.get_rank() != d.rank:
        raise RuntimeError("the torch.distributed group does not match RANK / WORLD_SIZE")


def _sync_state(state: dict[str, Any], d: _Dist) -> None:
    """Average the variant's floating-point state over the ranks (BEGAN's k_t is updated from
    each rank's own losses; without this the ranks' states would drift apart)."""
    if not d.active:
        return
    for value in state.values():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
            value.div_(d.world)


# --- helpers ------------------------------------------------------------------------------------


def _make_optimizer(kind: str, params, lr: float, betas) -> torch.optim.Optimizer:
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas))
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    raise ValueError(f"optimizer must be 'adam' or 'rmsprop', got {kind!r}")


def _state_to(state: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in state.items()}


def _scalar(x: Any) -> Any:
    return x.detach() if isinstance(x, torch.Tensor) else torch.tensor(float(x))


class _Logger:
    """Per-step losses and logs, held as device tensors until an interval ends (one host sync),
    then averaged into a metrics.jsonl record and the progress bar."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.critic: list[torch.Tensor] = []
        self.generator: list[torch.Tensor] = []
        self.extra: dict[str, list[torch.Tensor]] = {}

    def add(
        self,
        step: int,
        loss_c: torch.Tensor,
        loss_g: torch.Tensor,
        logs: dict[str, list[torch.Tensor]],
    ) -> None:
        self.steps.append(step)
        self.critic.append(loss_c.detach().float().reshape(()))
        self.generator.append(loss_g.detach().float().reshape(()))
        for key, values in logs.items():
            if values:
                self.extra.setdefault(key, []).append(
                    torch.stack([v.detach().float().reshape(()) for v in values]).mean()
                )

    def flush(self, d: _Dist) -> tuple[Optional[dict[str, Any]], Optional[str]]:
        """(the averaged record, or None if empty; a divergence message, or None)."""
        if not self.steps:
            return None, None
        lc, lg = torch.stack(self.critic), torch.stack(self.generator)
        bad = ~(torch.isfinite(lc) & torch.isfinite(lg))
        first_bad = torch.where(bad.any(), bad.int().argmax(), -1).reshape(1).to(torch.int64)
        if d.active:
            # Every rank stops together: a NaN on one rank reaches all parameters through DDP.
            flag = (first_bad >= 0).to(torch.int64)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            any_bad = bool(flag.item())
        else:
            any_bad = bool(first_bad.item() >= 0)
        message = None
        if any_bad:
            i = int(first_bad.item())
            if i >= 0:
                which = "critic" if not torch.isfinite(lc[i]) else "generator"
                value = float(lc[i] if which == "critic" else lg[i])
                message = f"the {which} loss became {value} at generator step {self.steps[i]}"
            else:
                message = "a loss became NaN or Inf on another rank"
        record = {
            "kind": "train",
            "step": self.steps[-1],
            "loss_critic": float(lc.mean()),
            "loss_generator": float(lg.mean()),
        }
        for key, values in self.extra.items():
            record[key] = float(torch.stack(values).mean())
        self.__init__()
        return record, message


# --- the trainer --------------------------------------------------------------------------------


class Trainer:
    """One run of `TrainConfig`. `run()` trains to `steps` and returns a `TrainResult`."""

    def __init__(self, config: TrainConfig, variant: Optional[variant_registry.Variant] = None):
        _check_config(config)
        self.config = config
        self.d = _dist_from_env()
        self.device = _pick_device(config.device, self.d)
        _init_dist(self.d, self.device)
        self._explicit_variant = variant
        self._setup()

    # -- set-up ----------------------------------------------------------------------------------

    def _resolve_config(self) -> tuple[TrainConfig, Optional[dict[str, Any]]]:
        cfg = dataclasses.replace(self.config, options=dict(self.config.options))
        variant_name = self._explicit_variant.name if self._explicit_variant else cfg.variant
        out = cfg.out or os.path.join(
            "runs", f"{variant_name or 'wgan-gp'}-{os.path.basename(cfg.data or 'grid25')}"
        )
        cfg.out = out
        ckpt_path = os.path.join(out, CHECKPOINT_NAME)
        saved = None
        if os.path.isfile(ckpt_path):
            if not cfg.resume:
                raise FileExistsError(
                    f"out: {out!r} already holds a checkpoint; pass --resume to continue it "
                    f"or choose another --out"
                )
            saved = load_checkpoint(ckpt_path)
            previous = saved["config"]
            for name in RUN_FIELDS:
                mine = getattr(cfg, name)
                if name == "variant" and self._explicit_variant is not None:
                    mine = self._explicit_variant.name
                theirs = previous.get(name)
                if name == "betas" and mine is not None:
                    mine = [float(b) for b in mine]
                if name == "options":
                    clash = {k: v for k, v in mine.items() if theirs.get(k, v) != v}
                    if clash:
                        raise ValueError(
                            f"resume: options {clash} differ from the checkpoint's "
                            f"{ {k: theirs[k] for k in clash} }"
                        )
                    continue
                if mine is not None and theirs is not None and mine != theirs:
                    raise ValueError(
                        f"resume: {name}={mine!r} differs from the checkpoint's {theirs!r}; "
                        f"leave it out to continue the run, or start a new one in another --out"
                    )
                setattr(cfg, name, theirs)
        elif cfg.resume and self.d.main and cfg.verbose:
            print(f"resume: no checkpoint in {out!r}; starting from step 0", file=sys.stderr)
        cfg.variant = variant_name or "wgan-gp"
        cfg.data = cfg.data or "grid25"
        cfg.seed = 0 if cfg.seed is None else cfg.seed
        cfg.lr_decay = cfg.lr_decay or "linear"
        return cfg, saved

    def _setup(self) -> None:
        cfg, saved = self._resolve_config()
        self.cfg = cfg
        self.dataset = load_data(cfg.data, seed=cfg.seed)
        preset = default_preset(self.dataset)
        if cfg.generator_hidden is None:
            # --hidden alone sizes both models; neither given: the preset's widths.
            cfg.generator_hidden = cfg.hidden or preset.generator_hidden or preset.hidden
        for name in ("steps", "batch_size", "z_dim", "hidden", "depth"):
            if getattr(cfg, name) is None:
                setattr(cfg, name, getattr(preset, name))
        if saved is not None and self.config.steps is None:
            # --resume without --steps finishes the run the checkpoint was started for.
            cfg.steps = saved["config"]["steps"]
        cfg.eval_every = cfg.eval_every or max(cfg.steps // 4, 1)
        cfg.ckpt_every = cfg.ckpt_every or cfg.eval_every

        base = self._explicit_variant or variant_registry.get(cfg.variant)
        if self.dataset.kind == "points" and base.defaults.points:
            # The variant's values tuned for point data (Defaults.points), under the flags.
            base = base.configure(**base.defaults.points)
        overrides = {k: getattr(cfg, k) for k in VARIANT_FIELDS if getattr(cfg, k) is not None}
        if cfg.options:
            overrides["options"] = dict(cfg.options)
        self.variant = base.configure(**overrides) if overrides else base
        # The config records the values in force, so a resumed run can tell a change from a
        # default.
        effective = self.variant.defaults.as_dict()
        for name in VARIANT_FIELDS:
            setattr(cfg, name, effective[name])
        cfg.options = dict(effective["options"])
        self.impl = cfg.impl
        self.impl_resolved = resolve(cfg.impl, self.device)

        data = self.dataset.data
        bounded = (
            self.dataset.kind == "images" and float(data.min()) >= -1 and float(data.max()) <= 1
        )
        self.spec = ModelSpec(
            self.dataset.sample_shape,
            cfg.z_dim,
            cfg.hidden,
            cfg.depth,
            self.variant.critic_kind,
            bounded,
            cfg.generator_hidden,
        )
        # Same initial parameters on every rank (DDP also broadcasts rank 0's at wrap time).
        torch.manual_seed(cfg.seed)
        generator, critic = build_models(self.spec)
        self.generator = generator.to(self.device)
        self.critic = critic.to(self.device)
        defaults = self.variant.defaults
        self.opt_g = _make_optimizer(
            defaults.optimizer, self.generator.parameters(), defaults.lr_generator, defaults.betas
        )
        self.opt_c = _make_optimizer(
            defaults.optimizer, self.critic.parameters(), defaults.lr_critic, defaults.betas
        )

        # Per-rank randomness: batches and z from dedicated generators; the variant's own draws
        # (interpolation eps, DRAGAN's perturbation) from the global RNGs.
        r = self.d.rank
        run_seed = cfg.seed * 1_000_003 + 7919 * r
        torch.manual_seed(run_seed + 1)
        np.random.seed((run_seed + 2) % 2**32)
        random.seed(run_seed + 3)
        self.data_gen = torch.Generator().manual_seed(run_seed + 4)
        self.noise_gen = torch.Generator(device=self.device).manual_seed(run_seed + 5)
        self.rng_objects = {"data": self.data_gen, "noise": self.noise_gen}

        shard = self.dataset.shard(r, self.d.world)
        if shard.shape[0] == 0:
            raise ValueError(
                f"data: {self.dataset.data.shape[0]} samples cannot be split over "
                f"{self.d.world} processes"
            )
        big = shard.numel() * shard.element_size() > 512 * 2**20
        self.shard = shard if big else shard.to(self.device)

        self.state = _state_to(dict(self.variant.init_state(self.device)), self.device)
        self.state.setdefault("step", 0)
        self.step = 0
        self.train_seconds = 0.0
        self.last_ckpt_step: Optional[int] = None
        if saved is not None:
            self._restore(saved)

        self.ddp_generator: nn.Module = self.generator
        self.ddp_critic: nn.Module = self.critic
        if self.d.active:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_generator = DDP(self.generator, device_ids=ids)
            self.ddp_critic = DDP(self.critic, device_ids=ids)

        self.out = cfg.out
        self.metrics_path = os.path.join(self.out, METRICS_NAME)
        self.ckpt_path = os.path.join(self.out, CHECKPOINT_NAME)
        if self.d.main:
            os.makedirs(self.out, exist_ok=True)
            self._trim_metrics()
        self._reference: Optional[torch.Tensor] = None

    def _restore(self, saved: dict[str, Any]) -> None:
        if _same_width(ModelSpec.from_dict(saved["model"])) != _same_width(self.spec):
            raise ValueError(
                f"resume: the checkpoint's models {saved['model']} do not match "
                f"this run's {self.spec.to_dict()}"
            )
        self.generator.load_state_dict(saved["generator"])
        self.critic.load_state_dict(saved["critic"])
        self.opt_g.load_state_dict(saved["opt_generator"])
        self.opt_c.load_state_dict(saved["opt_critic"])
        self.state = _state_to(saved["variant_state"], self.device)
        self.step = int(saved["step"])
        self.train_seconds = float(saved.get("train_seconds", 0.0))
        self.last_ckpt_step = self.step
        rngs = saved["rng"]
        if saved["world_size"] == self.d.world:
            restore_rng(rngs[self.d.rank], self.rng_objects)
        else:
            # Another process count cannot continue the same random streams: reseed from
            # (seed, rank, step) so the run is still reproducible.
            base = self.cfg.seed * 1_000_003 + 7919 * self.d.rank + 104_729 * self.step
            torch.manual_seed(base + 1)
            self.data_gen.manual_seed(base + 4)
            self.noise_gen.manual_seed(base + 5)
            if self.d.main and self.cfg.verbose:
                print(
                    f"resume: the checkpoint was written by {saved['world_size']} process(es), "
                    f"this run has {self.d.world}; random streams are reseeded",
                    file=sys.stderr,
                )

    def _trim_metrics(self) -> None:
        """Drop records past the checkpoint's step: a run killed after its last checkpoint
        logged steps that the resumed run repeats."""
        records = read_metrics(self.metrics_path)
        keep = [r for r in records if self.step > 0 and r.get("step", 0) <= self.step]
        if len(keep) != len(records):
            tmp = self.metrics_path + ".tmp"
            with open(tmp, "w") as f:
                for r in keep:
                    f.write(json.dumps(r) + "\n")
            os.replace(tmp, self.metrics_path)

    # -- one step --------------------------------------------------------------------------------

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.cfg.batch_size
        idx = torch.randint(self.shard.shape[0], (b,), generator=self.data_gen)
        real = self.shard[idx.to(self.shard.device)].to(self.device, non_blocking=True)
        z = torch.randn(b, self.cfg.z_dim, generator=self.noise_gen, device=self.device)
        return real, z

    def train_step(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, list[torch.Tensor]]]:
        """n_critic critic steps and one generator step; returns device tensors (no sync)."""
        v, impl = self.variant, self.impl
        logs: dict[str, list[torch.Tensor]] = {}
        self._set_lr()

        def keep(prefix: str, values: dict[str, Any]) -> None:
            for key, value in values.items():
                name = key if key in ("grad_norm", "clip_saturation") else f"{prefix}{key}"
                logs.setdefault(name, []).append(_scalar(value))

        loss_c = torch.zeros(())
        for _ in range(v.defaults.n_critic):
            real, z = self._batch()
            self.opt_c.zero_grad(set_to_none=True)
            # The generator is only sampled here: its DDP wrapper is not used, so no gradient
            # all-reduce is set up for it.
            loss_c, log_c = v.critic_loss(
                self.ddp_critic, self.generator, real, z, self.state, impl=impl
            )
            loss_c.backward()
            self.opt_c.step()
            self.state["step"] = self.state["step"] + 1
            log_a = v.after_critic_step(self.critic, self.state, impl=impl)
            _sync_state(self.state, self.d)
            keep("critic_", {k: val for k, val in log_c.items() if k != "loss"})
            keep("", log_a or {})
        real, z = self._batch()
        self.opt_g.zero_grad(set_to_none=True)
        # The critic's gradients from this backward are discarded (its next step zeroes them),
        # so the plain module is used and DDP reduces only the generator's gradients.
        loss_g, log_g = v.generator_loss(
            self.critic, self.ddp_generator, real, z, self.state, impl=impl
        )
        loss_g.backward()
        self.opt_g.step()
        keep("generator_", {k: val for k, val in log_g.items() if k != "loss"})
        return loss_c, loss_g, logs

    def _set_lr(self) -> None:
        """lr = base * (1 - step / steps) for "linear" decay: derived from the step alone, so a
        resumed run needs no scheduler state."""
        frac = 1.0 - self.step / self.cfg.steps if self.cfg.lr_decay == "linear" else 1.0
        dfl = self.variant.defaults
        for opt, base in ((self.opt_c, dfl.lr_critic), (self.opt_g, dfl.lr_generator)):
            for group in opt.param_groups:
                group["lr"] = base * frac

    # -- evaluation, logging, checkpoints --------------------------------------------------------

    def generate(self, n: int, seed: int) -> torch.Tensor:
        """n samples from the generator with a fixed z stream (CPU float32)."""
        return generate(self.generator, self.cfg.z_dim, n, seed, self.device)

    def evaluate(self) -> dict[str, float]:
        samples = self.generate(self.cfg.n_eval, seed=self.cfg.seed + 12345)
        if self._reference is None:
            self._reference = reference_sample(
                self.cfg.data, self.dataset, self.cfg.n_eval, self.cfg.seed
            )
        if not torch.isfinite(samples).all():
            return {"finite": 0.0}
        metrics = evaluate_samples(
            samples, self.dataset, self._reference, cache_dir=None, max_pairs=self.cfg.n_eval
        )
        if self.cfg.plots:
            title = (
                f"{self.variant.name} on {self.dataset.name}, step {self.step}: "
                f"{format_metrics(metrics)}"
            )
            if self.dataset.kind == "points" and self.dataset.sample_shape == (2,):
                plot_points(
                    os.path.join(self.out, "samples.png"),
                    samples[:2500],
                    self._reference[:2500],
                    self.dataset.centres,
                    _wrap(title),
                )
            elif self.dataset.kind == "images":
                plot_images(os.path.join(self.out, "samples.png"), samples, _wrap(title))
        return metrics

    def _append(self, record: dict[str, Any]) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def _params_finite(self) -> bool:
        params = list(self.generator.parameters()) + list(self.critic.parameters())
        ok = torch.stack([p.detach().isfinite().all() for p in params]).all()
        return bool(ok)

    def checkpoint_payload(self, rngs: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "step": self.step,
            "config": self.cfg.to_dict(),
            "variant": self.variant.name,
            "variant_defaults": self.variant.defaults.as_dict(),
            "model": self.spec.to_dict(),
            "data": {
                "name": self.dataset.name,
                "kind": self.dataset.kind,
                "shape": list(self.dataset.data.shape),
            },
            "generator": self.generator.state_dict(),
            "critic": self.critic.state_dict(),
            "opt_generator": self.opt_g.state_dict(),
            "opt_critic": self.opt_c.state_dict(),
            "variant_state": {
                k: v.detach().cpu() if isinstance(v, torch.Tensor) else v
                for k, v in self.state.items()
            },
            "rng": rngs,
            "world_size": self.d.world,
            "train_seconds": self.train_seconds,
        }

    def save(self) -> None:
        """Write the checkpoint (rank 0) with every rank's RNG states."""
        rng = capture_rng(self.rng_objects)
        if self.d.active:
            gathered: list[Any] = [None] * self.d.world
            dist.all_gather_object(gathered, rng)
        else:
            gathered = [rng]
        if self.d.main:
            save_checkpoint(self.ckpt_path, self.checkpoint_payload(gathered))
        self.last_ckpt_step = self.step

    def _diverged(self, message: str) -> TrainingDiverged:
        kept = (
            f"the last good checkpoint (generator step {self.last_ckpt_step}) is kept at "
            f"{self.ckpt_path}"
            if self.last_ckpt_step is not None
            else "no checkpoint had been written yet"
        )
        return TrainingDiverged(
            f"training stopped: {message}; {kept}. Try smaller learning rates (--lr-critic, "
            f"--lr-generator) or, for a penalty variant, a larger --penalty-weight."
        )

    # -- the loop --------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        cfg, d = self.cfg, self.d
        bar = None
        if cfg.progress and d.main:
            from tqdm.auto import tqdm

            bar = tqdm(
                total=cfg.steps,
                initial=self.step,
                desc=f"{cfg.variant} {cfg.data}",
                unit="step",
                dynamic_ncols=True,
                file=sys.stderr,
            )
        log = _Logger()
        metrics: dict[str, float] = {}
        try:
            tick = time.perf_counter()
            while self.step < cfg.steps:
                loss_c, loss_g, logs = self.train_step()
                self.step += 1
                log.add(self.step, loss_c, loss_g, logs)
                if bar is not None:
                    bar.update(1)
                last = self.step == cfg.steps
                want_ckpt = self.step % cfg.ckpt_every == 0 or last
                want_eval = self.step % cfg.eval_every == 0 or last
                if self.step % cfg.log_every and not (want_ckpt or want_eval):
                    continue
                self.train_seconds += time.perf_counter() - tick
                record, message = log.flush(d)
                if message is None and want_ckpt and not self._params_finite():
                    message = f"the parameters became NaN or Inf by generator step {self.step}"
                if record is not None and d.main:
                    record["time"] = round(self.train_seconds, 3)
                    self._append(record)
                    if bar is not None:
                        bar.set_postfix(_postfix(record), refresh=False)
                if message is not None:
                    raise self._diverged(message)
                if want_ckpt:
                    self.save()
                if want_eval and d.main:
                    metrics = self.evaluate()
                    self._append({"kind": "eval", "step": self.step, **metrics})
                    if cfg.plots:
                        plot_curves(
                            os.path.join(self.out, "curves.png"),
                            read_metrics(self.metrics_path),
                            f"{self.variant.name} on {self.dataset.name}",
                        )
                    if bar is not None:
                        bar.write(f"step {self.step}: {format_metrics(metrics)}")
                tick = time.perf_counter()
        finally:
            if bar is not None:
                bar.close()
        if d.main and not metrics and cfg.steps <= self.step:
            # Resumed at (or past) the final step: nothing trained, evaluate what is there.
            metrics = self.evaluate()
        result = TrainResult(
            self.out,
            self.step,
            self.train_seconds,
            metrics,
            self.generator,
            self.critic,
            self.cfg.to_dict(),
        )
        if d.main:
            summary = self.summary(metrics)
            with open(os.path.join(self.out, SUMMARY_NAME), "w") as f:
                json.dump(summary, f, indent=2)
            if cfg.verbose:
                print(format_summary(summary))
        return result

    def summary(self, metrics: dict[str, float]) -> dict[str, Any]:
        dfl = self.variant.defaults
        return {
            "out": self.out,
            "variant": self.variant.name,
            "data": self.dataset.name,
            "steps": self.step,
            "critic_steps": int(self.state["step"]),
            "batch_size": self.cfg.batch_size,
            "processes": self.d.world,
            "device": str(self.device),
            "impl": f"{self.cfg.impl} -> {self.impl_resolved}",
            "optimizer": f"{dfl.optimizer} lr {dfl.lr_critic:g} / {dfl.lr_generator:g}",
            "n_critic": dfl.n_critic,
            "penalty_weight": dfl.penalty_weight,
            "clip_value": dfl.clip_value,
            "seconds": round(self.train_seconds, 2),
            "metrics": metrics,
        }

    def close(self) -> None:
        if self.d.owned and dist.is_initialized():
            dist.destroy_process_group()
            self.d.owned = False


def _same_width(spec: ModelSpec) -> ModelSpec:
    """`spec` with generator_hidden spelled out (a checkpoint may hold None for "= hidden")."""
    return dataclasses.replace(spec, generator_hidden=spec.generator_width)


def _wrap(title: str, width: int = 70) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(title, width))


def _postfix(record: dict[str, Any]) -> dict[str, str]:
    out = {"D": f"{record['loss_critic']:.3g}", "G": f"{record['loss_generator']:.3g}"}
    if "grad_norm" in record:
        out["|grad|"] = f"{record['grad_norm']:.3g}"
    return out


def format_summary(summary: dict[str, Any]) -> str:
    """The final table: run settings, then the metrics."""
    rows = [
        ("run", summary["out"]),
        ("variant", summary["variant"]),
        ("data", summary["data"]),
        (
            "steps",
            f"{summary['steps']} generator / {summary['critic_steps']} critic "
            f"(n_critic {summary['n_critic']}, batch {summary['batch_size']} x "
            f"{summary['processes']} process(es))",
        ),
        ("optimizer", summary["optimizer"]),
        ("device / impl", f"{summary['device']} / {summary['impl']}"),
        ("train time", f"{summary['seconds']:.1f} s"),
    ]
    if summary["penalty_weight"] is not None:
        rows.insert(5, ("penalty weight", f"{summary['penalty_weight']:g}"))
    if summary["clip_value"] is not None:
        rows.insert(5, ("clip value", f"{summary['clip_value']:g}"))
    m = summary["metrics"]
    if "modes" in m:
        rows.append(("modes captured", f"{m['modes']} / {m['n_modes']}"))
        rows.append(("high quality", f"{m['hq']:.1f} %"))
    labels = {
        "mmd2": "MMD^2",
        "swd": "sliced W1",
        "precision": "precision (k=3)",
        "recall": "recall (k=3)",
    }
    for key, label in labels.items():
        if key in m:
            rows.append((label, f"{m[key]:.4g}"))
    if "classes" in m:
        rows.append(("digit classes", f"{m['classes']} / 10"))
        rows.append(("label KL", f"{m['label_kl']:.4f}"))
    if m.get("finite") == 0.0:
        rows.append(("samples", "NaN / Inf: no metrics"))
    width = max(len(k) for k, _ in rows)
    line = "-" * (width + 2 + max(len(str(v)) for _, v in rows))
    body = "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
    return f"{line}\n{body}\n{line}"


def train(config: TrainConfig, variant: Optional[variant_registry.Variant] = None) -> TrainResult:
    """Train per `config` (see TrainConfig); `variant` replaces the registry lookup (tests,
    notebooks). Raises TrainingDiverged when a loss becomes NaN / Inf."""
    trainer = Trainer(config, variant)
    try:
        return trainer.run()
    finally:
        trainer.close()
