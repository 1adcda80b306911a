"""The GAN trainer: models, optimisers, the n_critic schedule, evaluation, checkpoints and the
training loop. Its configuration is in config.py, the torchrun / DDP set-up in distributed.py,
and what a run logs, plots and prints in reporting.py; their public names are importable from
here too.

One generator step is `n_critic` critic steps followed by one generator step (WGAN's Algorithm
1); `steps` counts generator steps. Per critic step the trainer draws a real batch and z, calls
`variant.critic_loss`, backpropagates, steps the critic's optimiser, increments
`state["step"]` (critic steps so far) and calls `variant.after_critic_step`; per generator step
it calls `variant.generator_loss`. The variant owns the losses, penalties and clipping; the
trainer owns everything else. A `System` (several networks, its own generator step) runs in
`SystemTrainer` (systems.py), a subclass; `train` and `make_trainer` pick the class.

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

import copy
import dataclasses
import os
import random
import sys
import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from .. import variants as variant_registry
from ..averaging import ema_
from ..ops import resolve
from .checkpoint import (
    CHECKPOINT_NAME,
    FORMAT_VERSION,
    capture_rng,
    restore_rng,
    save_checkpoint,
)
from .config import (
    DEVICES,
    IMAGES_PRESET,
    LR_DECAYS,
    POINTS_PRESET,
    RUN_FIELDS,
    VARIANT_FIELDS,
    Preset,
    TrainConfig,
    apply_preset,
    check_config,
    configure_variant,
    default_preset,
    resolve_config,
)
from .data import load_data, reference_sample
from .distributed import (
    close_dist,
    dist_from_env,
    gather_objects,
    init_dist,
    pick_device,
    sync_state,
    wrap_ddp,
)
from .metrics import evaluate_samples, format_metrics
from .models import ModelSpec, build_models, generate
from .reporting import (
    METRICS_NAME,
    SUMMARY_NAME,
    Logger,
    append_record,
    format_summary,
    plot_history,
    plot_samples,
    postfix,
    progress_bar,
    scalar,
    trim_metrics,
    write_summary,
)

__all__ = [
    # the trainer
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "train",
    # config.py
    "DEVICES",
    "IMAGES_PRESET",
    "LR_DECAYS",
    "POINTS_PRESET",
    "RUN_FIELDS",
    "VARIANT_FIELDS",
    "Preset",
    "TrainConfig",
    "default_preset",
    # reporting.py
    "METRICS_NAME",
    "SUMMARY_NAME",
    "format_summary",
]


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf; the last good checkpoint was kept."""


@dataclass
class TrainResult:
    out: str
    step: int
    seconds: float  # training time of this process's run (evaluation and plots excluded)
    metrics: dict[str, float]
    generator: Optional[nn.Module]  # the network called "generator" (None if there is none)
    critic: Optional[nn.Module]  # the network called "critic" (None if there is none)
    config: dict[str, Any]
    networks: dict[str, nn.Module] = dataclasses.field(default_factory=dict)  # all, by name


# --- helpers ------------------------------------------------------------------------------------


def _make_optimizer(kind: str, params, lr: float, betas) -> torch.optim.Optimizer:
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas))
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    raise ValueError(f"optimizer must be 'adam' or 'rmsprop', got {kind!r}")


def _state_to(state: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in state.items()}


# --- the trainer --------------------------------------------------------------------------------


class Trainer:
    """One run of `TrainConfig`. `run()` trains to `steps` and returns a `TrainResult`."""

    def __init__(self, config: TrainConfig, variant: Optional[variant_registry.Variant] = None):
        check_config(config)
        self.config = config
        self.d = dist_from_env()
        self.device = pick_device(config.device, self.d)
        init_dist(self.d, self.device)
        self._explicit_variant = variant
        self._setup()

    # -- set-up ----------------------------------------------------------------------------------

    def _resolve_config(self) -> tuple[TrainConfig, Optional[dict[str, Any]]]:
        return resolve_config(self.config, self._explicit_variant, self.d.main)

    def _setup(self) -> None:
        cfg, saved = self._resolve_config()
        self.cfg = cfg
        self.dataset = load_data(cfg.data, seed=cfg.seed)
        # The variant first: the preset's number of steps depends on its n_critic.
        self.variant = configure_variant(cfg, self._explicit_variant, self.dataset)
        apply_preset(cfg, self.dataset, saved, steps_given=self.config.steps is not None)
        # None defers to GANKERNELS_IMPL (else auto), as every public function does.
        self.impl = cfg.impl
        self.impl_label = cfg.impl or os.environ.get("GANKERNELS_IMPL", "auto")
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
        self._build()

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

        self._load_shard()

        self.state = _state_to(dict(self.variant.init_state(self.device)), self.device)
        self.state.setdefault("step", 0)
        self.step = 0
        self.train_seconds = 0.0
        self.last_ckpt_step: Optional[int] = None
        if saved is not None:
            self._restore(saved)

        self._wrap()

        self.out = cfg.out
        self.metrics_path = os.path.join(self.out, METRICS_NAME)
        self.ckpt_path = os.path.join(self.out, CHECKPOINT_NAME)
        if self.d.main:
            os.makedirs(self.out, exist_ok=True)
            trim_metrics(self.metrics_path, self.step)
        self._reference: Optional[torch.Tensor] = None

    def _build(self) -> None:
        """The models (and the moving average) and their optimisers."""
        if isinstance(self.variant, variant_registry.System):
            raise TypeError(
                f"variant {self.variant.name!r} is a System: train it with "
                f"gankernels.train.train or make_trainer, which use SystemTrainer"
            )
        generator, critic = build_models(self.spec)
        critic = self.variant.prepare_critic(critic)
        self.generator = generator.to(self.device)
        self.critic = critic.to(self.device)
        # The moving average of the generator's weights, updated after each generator step by
        # one fused gankernels.ema_ call: what is evaluated and sampled when it is kept.
        self.generator_ema: Optional[nn.Module] = None
        if self.cfg.ema_decay:
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
        defaults = self.variant.defaults
        self.opt_g = _make_optimizer(
            defaults.optimizer, self.generator.parameters(), defaults.lr_generator, defaults.betas
        )
        self.opt_c = _make_optimizer(
            defaults.optimizer, self.critic.parameters(), defaults.lr_critic, defaults.betas
        )

    def _load_shard(self) -> None:
        """This rank's rows of the data, on the device unless they are large."""
        shard = self.dataset.shard(self.d.rank, self.d.world)
        if shard.shape[0] == 0:
            raise ValueError(
                f"data: {self.dataset.data.shape[0]} samples cannot be split over "
                f"{self.d.world} processes"
            )
        big = shard.numel() * shard.element_size() > 512 * 2**20
        self.shard = shard if big else shard.to(self.device)

    def _wrap(self) -> None:
        self.ddp_generator: nn.Module = wrap_ddp(self.generator, self.device, self.d)
        self.ddp_critic: nn.Module = wrap_ddp(self.critic, self.device, self.d)

    def networks(self) -> dict[str, nn.Module]:
        """The trained networks by name (plain modules, not their DDP wrappers)."""
        return {"generator": self.generator, "critic": self.critic}

    def _load_models(self, saved: dict[str, Any]) -> None:
        self.generator.load_state_dict(saved["generator"])
        if self.generator_ema is not None:
            self.generator_ema.load_state_dict(saved.get("generator_ema") or saved["generator"])
        self.critic.load_state_dict(saved["critic"])
        self.opt_g.load_state_dict(saved["opt_generator"])
        self.opt_c.load_state_dict(saved["opt_critic"])

    def _models_payload(self) -> dict[str, Any]:
        return {
            "generator": self.generator.state_dict(),
            "generator_ema": (
                self.generator_ema.state_dict() if self.generator_ema is not None else None
            ),
            "critic": self.critic.state_dict(),
            "opt_generator": self.opt_g.state_dict(),
            "opt_critic": self.opt_c.state_dict(),
        }

    def _restore(self, saved: dict[str, Any]) -> None:
        if _same_width(ModelSpec.from_dict(saved["model"])) != _same_width(self.spec):
            raise ValueError(
                f"resume: the checkpoint's models {saved['model']} do not match "
                f"this run's {self.spec.to_dict()}"
            )
        self._load_models(saved)
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
                logs.setdefault(name, []).append(scalar(value))

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
            sync_state(self.state, self.d)
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
        if self.generator_ema is not None:
            ema_(self.generator_ema, self.generator, self.cfg.ema_decay, impl=impl)
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
        """n samples from the generator (its moving average when one is kept) with a fixed z
        stream (CPU float32)."""
        g = self.generator_ema if self.generator_ema is not None else self.generator
        return generate(g, self.cfg.z_dim, n, seed, self.device)

    def _metrics(self, samples: torch.Tensor, seed: int) -> dict[str, float]:
        """The metrics of the trained networks; `samples` are `generate(n_eval, seed)`'s."""
        return evaluate_samples(
            samples, self.dataset, self._reference, cache_dir=None, max_pairs=self.cfg.n_eval
        )

    def evaluate(self) -> dict[str, float]:
        seed = self.cfg.seed + 12345
        samples = self.generate(self.cfg.n_eval, seed=seed)
        if self._reference is None:
            self._reference = reference_sample(
                self.cfg.data, self.dataset, self.cfg.n_eval, self.cfg.seed
            )
        if not torch.isfinite(samples).all():
            return {"finite": 0.0}
        metrics = self._metrics(samples, seed)
        if self.cfg.plots:
            title = (
                f"{self.variant.name} on {self.dataset.name}, step {self.step}: "
                f"{format_metrics(metrics)}"
            )
            plot_samples(self.out, samples, self._reference, self.dataset, title)
        return metrics

    def _params_finite(self) -> bool:
        params = [p for net in self.networks().values() for p in net.parameters()]
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
                "n_classes": self.dataset.n_classes,
            },
            **self._models_payload(),
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
        gathered = gather_objects(capture_rng(self.rng_objects), self.d)
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
            bar = progress_bar(cfg.steps, self.step, f"{cfg.variant} {cfg.data}")
        log = Logger()
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
                    append_record(self.metrics_path, record)
                    if bar is not None:
                        bar.set_postfix(postfix(record), refresh=False)
                if message is not None:
                    raise self._diverged(message)
                if want_ckpt:
                    self.save()
                if want_eval and d.main:
                    metrics = self.evaluate()
                    append_record(self.metrics_path, {"kind": "eval", "step": self.step, **metrics})
                    if cfg.plots:
                        plot_history(
                            self.out,
                            self.metrics_path,
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
        nets = self.networks()
        result = TrainResult(
            self.out,
            self.step,
            self.train_seconds,
            metrics,
            nets.get("generator"),
            nets.get("critic"),
            self.cfg.to_dict(),
            nets,
        )
        if d.main:
            write_summary(self.out, self.summary(metrics), cfg.verbose)
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
            "impl": f"{self.impl_label} -> {self.impl_resolved}",
            "optimizer": f"{dfl.optimizer} lr {dfl.lr_critic:g} / {dfl.lr_generator:g}",
            "n_critic": dfl.n_critic,
            "penalty_weight": dfl.penalty_weight,
            "clip_value": dfl.clip_value,
            "seconds": round(self.train_seconds, 2),
            "metrics": metrics,
        }

    def close(self, wait_for_peers: bool = True) -> None:
        close_dist(self.d, wait_for_peers)


def _same_width(spec: ModelSpec) -> ModelSpec:
    """`spec` with generator_hidden spelled out (a checkpoint may hold None for "= hidden")."""
    return dataclasses.replace(spec, generator_hidden=spec.generator_width)


def make_trainer(
    config: TrainConfig, variant: Optional[variant_registry.Variant] = None
) -> Trainer:
    """A `Trainer`, or a `SystemTrainer` when the variant is a `System` (with --resume and no
    variant given, the checkpoint's)."""
    resolved, _ = resolve_config(config, variant, main=False)
    chosen = variant or variant_registry.get(resolved.variant)
    if isinstance(chosen, variant_registry.System):
        from .systems import SystemTrainer

        return SystemTrainer(config, variant)
    return Trainer(config, variant)


def train(config: TrainConfig, variant: Optional[variant_registry.Variant] = None) -> TrainResult:
    """Train per `config` (see TrainConfig); `variant` replaces the registry lookup (tests,
    notebooks). Raises TrainingDiverged when a loss becomes NaN / Inf."""
    trainer = make_trainer(config, variant)
    try:
        result = trainer.run()
    except BaseException:
        trainer.close(wait_for_peers=False)
        raise
    trainer.close()
    return result
