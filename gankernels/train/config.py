"""The trainer's configuration: `TrainConfig`, its checks, the presets per kind of data, and the
resolution of "None means the default" against a checkpoint (--resume), the preset and the
variant's defaults."""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Optional

from .. import variants as variant_registry
from .checkpoint import CHECKPOINT_NAME, load_checkpoint
from .data import DataSet
from .metrics import N_EVAL

DEVICES = ("auto", "cpu", "cuda")
LR_DECAYS = ("linear", "none")

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
    "ema_decay",
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
    """The trainer's defaults for one kind of data (tuned for a 2-core CPU, see README).

    The run's length is either `steps` generator steps, or a budget of `critic_steps` critic
    steps: critic_steps / n_critic generator steps, so a variant with one critic step per
    generator step takes five times the generator steps of one with five, in about the same
    time (the critic steps cost most of it)."""

    batch_size: int
    z_dim: int
    hidden: int  # the critic's width (and the generator's, unless generator_hidden is set)
    depth: int
    generator_hidden: Optional[int] = None
    steps: Optional[int] = None
    critic_steps: Optional[int] = None

    def __post_init__(self) -> None:
        if (self.steps is None) == (self.critic_steps is None):
            raise ValueError("a Preset sets exactly one of steps and critic_steps")

    def generator_steps(self, n_critic: int) -> int:
        """The default number of generator steps for a variant with `n_critic`."""
        if self.steps is not None:
            return self.steps
        return max(1, -(-self.critic_steps // n_critic))


POINTS_PRESET = Preset(
    critic_steps=10_000, batch_size=256, z_dim=2, hidden=128, depth=3, generator_hidden=256
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
    impl: Optional[str] = None  # None: GANKERNELS_IMPL, else auto
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
    # The decay of a moving average of the generator's weights (gankernels.ema_), kept after
    # each generator step and the generator that is evaluated, sampled and saved as
    # "generator_ema"; None (default) or 0 keeps none.
    ema_decay: Optional[float] = None
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


def check_config(cfg: TrainConfig) -> None:
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
    if cfg.ema_decay is not None and not (
        isinstance(cfg.ema_decay, (int, float)) and 0 <= cfg.ema_decay < 1
    ):
        raise ValueError(f"ema_decay must be a number in [0, 1), got {cfg.ema_decay!r}")
    if cfg.lr_decay is not None and cfg.lr_decay not in LR_DECAYS:
        raise ValueError(f"lr_decay must be one of {', '.join(LR_DECAYS)}, got {cfg.lr_decay!r}")
    if cfg.device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {cfg.device!r}")


def resolve_config(
    config: TrainConfig,
    explicit_variant: Optional[variant_registry.Variant],
    main: bool,
) -> tuple[TrainConfig, Optional[dict[str, Any]]]:
    """A copy of `config` with its output directory, and the run settings of the checkpoint
    there when resuming (None when there is none); `main`: this process reports (rank 0)."""
    cfg = dataclasses.replace(config, options=dict(config.options))
    variant_name = explicit_variant.name if explicit_variant else cfg.variant
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
            if name == "variant" and explicit_variant is not None:
                mine = explicit_variant.name
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
    elif cfg.resume and main and cfg.verbose:
        print(f"resume: no checkpoint in {out!r}; starting from step 0", file=sys.stderr)
    cfg.variant = variant_name or "wgan-gp"
    cfg.data = cfg.data or "grid25"
    cfg.seed = 0 if cfg.seed is None else cfg.seed
    cfg.lr_decay = cfg.lr_decay or "linear"
    return cfg, saved


def apply_preset(
    cfg: TrainConfig,
    dataset: DataSet,
    saved: Optional[dict[str, Any]],
    steps_given: bool,
) -> None:
    """Fill the model size, steps, batch size and intervals `cfg` leaves at None from the
    data's preset (`steps`: the checkpoint's, when resuming without `steps_given`; otherwise
    the preset's for `cfg.n_critic`, which `configure_variant` has set)."""
    preset = default_preset(dataset)
    if cfg.generator_hidden is None:
        # --hidden alone sizes both models; neither given: the preset's widths.
        cfg.generator_hidden = cfg.hidden or preset.generator_hidden or preset.hidden
    for name in ("batch_size", "z_dim", "hidden", "depth"):
        if getattr(cfg, name) is None:
            setattr(cfg, name, getattr(preset, name))
    if cfg.steps is None:
        cfg.steps = preset.generator_steps(cfg.n_critic)
    if saved is not None and not steps_given:
        # --resume without --steps finishes the run the checkpoint was started for.
        cfg.steps = saved["config"]["steps"]
    cfg.eval_every = cfg.eval_every or max(cfg.steps // 4, 1)
    cfg.ckpt_every = cfg.ckpt_every or cfg.eval_every


def configure_variant(
    cfg: TrainConfig,
    explicit_variant: Optional[variant_registry.Variant],
    dataset: DataSet,
) -> variant_registry.Variant:
    """The variant `cfg` names (or `explicit_variant`) with its point-data values on point data
    and `cfg`'s overrides on top; `cfg` then records the values in force."""
    base = explicit_variant or variant_registry.get(cfg.variant)
    if dataset.kind == "points" and base.defaults.points:
        # The variant's values tuned for point data (Defaults.points), under the flags.
        base = base.configure(**base.defaults.points)
    overrides = {k: getattr(cfg, k) for k in VARIANT_FIELDS if getattr(cfg, k) is not None}
    if cfg.options:
        overrides["options"] = dict(cfg.options)
    variant = base.configure(**overrides) if overrides else base
    # The config records the values in force, so a resumed run can tell a change from a
    # default.
    effective = variant.defaults.as_dict()
    for name in VARIANT_FIELDS:
        setattr(cfg, name, effective[name])
    cfg.options = dict(effective["options"])
    return variant
