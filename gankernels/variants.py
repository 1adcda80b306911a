"""GAN variants: the `Variant` protocol and the registry read from the entry-point group
`gankernels.variants`.

A variant is one object: a name, a one-line description, its critic and generator losses, what
runs after a critic step (WGAN's weight clipping, BEGAN's k_t update) and its default
hyper-parameters (docs/math.md section 5). The built-in variants live in the `gankernels_plugins`
package and are registered in gankernels' own pyproject.toml exactly as a third party registers
its own::

    [project.entry-points."gankernels.variants"]
    my-gan = "my_package.module:my_gan"      # a Variant instance (or a Variant subclass)

The registry is read lazily, on the first `available()` / `get()`, never at `import gankernels`.
A plugin that fails to import is reported once (a `PluginLoadWarning` naming its distribution and
the error) and listed by `failed()` and `python -m gankernels variants`; the others still work.
Two distributions claiming one name make `get(name)` raise a `VariantConflictError` naming both.

A `System` is a variant with several networks and optimisers, on data that may carry labels, pairs
or a second domain (cGAN, CycleGAN, AAE, ...): it builds its networks, names its optimisers and
runs a whole generator step itself through the trainer's `StepContext`. It is registered the same
way; the trainer, checkpoints, `sample` and `evaluate` handle both kinds.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import difflib
import importlib
import importlib.metadata
import math
import threading
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, NamedTuple, Optional, Protocol

import torch
from torch import nn

if TYPE_CHECKING:
    from .train.data import DataSet
    from .train.models import ModelSpec

GROUP = "gankernels.variants"
OPTIMIZERS = ("adam", "rmsprop")
CRITIC_KINDS = ("score", "autoencoder", "features")
# What a System may need from its data: class labels, a second domain paired row for row with
# the first, or a second domain drawn independently of it.
NEEDS = ("labels", "pairs", "domains")
RATES = ("critic", "generator")
# Where a variant registered with `register()` (not through an entry point) says it comes from.
IN_PROCESS = "<registered in process>"

__all__ = [
    "GROUP",
    "Batch",
    "Defaults",
    "OptimizerGroup",
    "PluginFailure",
    "PluginLoadWarning",
    "StepContext",
    "System",
    "Variant",
    "VariantConflictError",
    "add_variants_parser",
    "available",
    "distribution_of",
    "failed",
    "get",
    "register",
]


class PluginLoadWarning(UserWarning):
    """A variant plugin could not be loaded; the other variants are unaffected."""


class VariantConflictError(RuntimeError):
    """Two distributions (or a distribution and `register()`) claim the same variant name."""


@dataclass(frozen=True)
class Defaults:
    """A variant's default hyper-parameters (docs/math.md section 5); the trainer's flags
    override them.

    `options` holds variant-specific settings (r1 "lazy_interval", began "gamma", "lambda_k",
    "eta", dragan "perturb", lsgan "a"/"b"/"c", the f-GANs' "nonsaturating", ...).

    `points` holds values that replace the fields above when the trainer runs on point data
    (N x D: the toy sets of docs/math.md section 7, a user's N x D file), e.g. a learning rate tuned
    for the small MLPs there, while the fields keep the reference values of docs/math.md section 5
    for images. The trainer's flags override both.
    """

    n_critic: int = 1  # critic steps per generator step
    optimizer: str = "adam"  # "adam" | "rmsprop"
    lr_critic: float = 2e-4
    lr_generator: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    penalty_weight: Optional[float] = None
    clip_value: Optional[float] = None
    options: Mapping[str, Any] = field(default_factory=dict)
    points: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Frozen: normalise through object.__setattr__ so tuples/dicts given as lists still compare.
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        object.__setattr__(self, "options", dict(self.options))
        object.__setattr__(self, "points", dict(self.points))
        _check_defaults(self)

    def as_dict(self) -> dict[str, Any]:
        """The fields as plain Python values (for printing and checkpoints)."""
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        out["options"] = dict(self.options)
        out["points"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.points.items()}
        return out

    def for_points(self) -> Defaults:
        """These defaults with `points` applied (what the trainer uses on point data)."""
        if not self.points:
            return self
        return dataclasses.replace(self, **self.points)


def _positive(name: str, value: Any, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        expected = "a finite number >= 0" if allow_zero else "a finite number > 0"
        raise ValueError(f"{name} must be {expected}, got {value!r}")


def _check_defaults(d: Defaults) -> None:
    if isinstance(d.n_critic, bool) or not isinstance(d.n_critic, int) or d.n_critic < 1:
        raise ValueError(f"n_critic must be an int >= 1, got {d.n_critic!r}")
    if d.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {d.optimizer!r}")
    _positive("lr_critic", d.lr_critic)
    _positive("lr_generator", d.lr_generator)
    if len(d.betas) != 2 or not all(0.0 <= b < 1.0 for b in d.betas):
        raise ValueError(f"betas must be two numbers in [0, 1), got {d.betas!r}")
    if d.penalty_weight is not None:
        _positive("penalty_weight", d.penalty_weight, allow_zero=True)
    if d.clip_value is not None:
        _positive("clip_value", d.clip_value)
    if d.points:
        allowed = {f.name for f in dataclasses.fields(Defaults)} - {"options", "points"}
        unknown = sorted(set(d.points) - allowed)
        if unknown:
            raise ValueError(
                f"points: {', '.join(map(repr, unknown))} are not Defaults fields; "
                f"expected some of {', '.join(sorted(allowed))}"
            )
        # The values must make valid defaults themselves (this checks them like the fields).
        dataclasses.replace(d, points={}, **d.points)


class Variant:
    """A GAN variant. Subclass it (or instantiate a subclass) and register it as an entry point.

    The trainer owns the optimisers, `zero_grad`/`backward`/`step`, the state dict (from
    `init_state`; it sets `state["step"]`, the number of critic steps taken so far) and the
    `n_critic` schedule. Per critic step it calls `critic_loss`, backpropagates the loss, steps
    the critic's optimiser and calls `after_critic_step`; per generator step `generator_loss`.
    The state holds only tensors and numbers so that it can be checkpointed.

    Log dicts hold detached 0-dim tensors (no host synchronisation); a variant that computes a
    gradient penalty logs "grad_norm", the mean per-sample norm of the critic's input gradient.
    """

    name: str
    description: str
    defaults: Defaults
    # "score": outputs [B] or [B, 1]; "autoencoder": outputs like x; "features": outputs [B, F]
    critic_kind: str = "score"

    def __init__(
        self,
        name: str,
        description: str,
        defaults: Optional[Defaults] = None,
        *,
        critic_kind: str = "score",
    ) -> None:
        if not isinstance(name, str) or not name or name.strip() != name or " " in name:
            raise ValueError(f"name must be a non-empty string without spaces, got {name!r}")
        if not isinstance(description, str) or not description or "\n" in description:
            raise ValueError(
                f"description of variant {name!r} must be one non-empty line, got {description!r}"
            )
        if critic_kind not in CRITIC_KINDS:
            raise ValueError(f"critic_kind must be one of {CRITIC_KINDS}, got {critic_kind!r}")
        self.name = name
        self.description = description
        self.defaults = defaults if defaults is not None else Defaults()
        if not isinstance(self.defaults, Defaults):
            raise TypeError(
                f"defaults must be a gankernels.variants.Defaults, "
                f"got {type(self.defaults).__name__}"
            )
        self.critic_kind = critic_kind
        self.check_defaults(self.defaults)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {self.description}>"

    # -- configuration --------------------------------------------------------------------------

    def check_defaults(self, defaults: Defaults) -> None:
        """Raise ValueError for settings this variant cannot use (a bad option value, a missing
        penalty weight); `Defaults` itself checks the generic fields. Subclasses extend it."""

    def configure(self, **overrides: Any) -> Variant:
        """A copy with `Defaults` fields or `options` entries replaced.

        A keyword that names a `Defaults` field replaces it; one that names an existing option
        replaces that option; `options={...}` merges a whole mapping. Anything else is an error.
        """
        fields = {f.name for f in dataclasses.fields(Defaults)}
        options = dict(self.defaults.options)
        options.update(overrides.pop("options", None) or {})
        replaced: dict[str, Any] = {}
        for key, value in overrides.items():
            if key in fields:
                replaced[key] = value
            elif key in options:
                options[key] = value
            else:
                known = sorted(fields - {"options"}) + sorted(options)
                raise ValueError(
                    f"variant {self.name!r} has no setting {key!r}; "
                    f"expected one of {', '.join(known)}"
                )
        defaults = dataclasses.replace(self.defaults, options=options, **replaced)
        self.check_defaults(defaults)
        new = copy.copy(self)
        new.defaults = defaults
        return new

    # -- training -------------------------------------------------------------------------------

    def prepare_critic(self, critic: torch.nn.Module) -> torch.nn.Module:
        """The critic this variant trains, made from the one the trainer built (SNGAN adds
        spectral normalisation to its layers); default: unchanged. The trainer calls it once,
        right after building the models and before the optimisers, a checkpoint's weights and
        DDP, so what it adds is in the state dict and resumes exactly."""
        return critic

    def init_state(self, device: torch.device) -> dict[str, Any]:
        """The per-run state: {"step": 0} plus whatever the variant keeps on `device`."""
        return {"step": 0}

    def critic_loss(
        self,
        critic: Callable,
        generator: Callable,
        real: torch.Tensor,
        z: torch.Tensor,
        state: dict[str, Any],
        *,
        impl: Optional[str] = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(the critic's loss to backpropagate, detached scalars to log)."""
        raise NotImplementedError(f"variant {self.name!r} does not define critic_loss")

    def generator_loss(
        self,
        critic: Callable,
        generator: Callable,
        real: torch.Tensor,
        z: torch.Tensor,
        state: dict[str, Any],
        *,
        impl: Optional[str] = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(the generator's loss to backpropagate, detached scalars to log)."""
        raise NotImplementedError(f"variant {self.name!r} does not define generator_loss")

    def after_critic_step(
        self, critic: torch.nn.Module, state: dict[str, Any], *, impl: Optional[str] = None
    ) -> dict[str, torch.Tensor]:
        """What runs after the critic's optimiser step (clipping, k_t update); default nothing."""
        return {}

    def describe_defaults(self) -> str:
        """The defaults on one line, as `python -m gankernels variants` prints them."""
        d = self.defaults
        parts = [
            f"n_critic={d.n_critic}",
            f"{d.optimizer} lr_critic={d.lr_critic:g} lr_generator={d.lr_generator:g}",
        ]
        if d.optimizer == "adam":
            parts.append(f"betas=({d.betas[0]:g}, {d.betas[1]:g})")
        if d.penalty_weight is not None:
            parts.append(f"penalty_weight={d.penalty_weight:g}")
        if d.clip_value is not None:
            parts.append(f"clip_value={d.clip_value:g}")
        parts.extend(f"{k}={v!r}" for k, v in sorted(d.options.items()))
        if d.points:
            points = " ".join(
                f"{k}={v:g}" if isinstance(v, float) else f"{k}={v!r}"
                for k, v in sorted(d.points.items())
            )
            parts.append(f"on point data: {points}")
        return ", ".join(parts)


# --- variants with several networks -------------------------------------------------------------


class OptimizerGroup(NamedTuple):
    """One optimiser over the parameters of the named networks, at `Defaults.lr_critic`
    (rate "critic") or `Defaults.lr_generator` (rate "generator"), with the variant's
    optimiser kind and betas. Updates of a "critic" group count as critic steps."""

    networks: tuple[str, ...]
    rate: str


class Batch(NamedTuple):
    """One draw of training data and noise, `batch_size` rows.

    x: the data (domain A) [B, *sample_shape]; labels: their classes [B] (int64), when the data
    has labels; second: domain B [B, ...], the rows paired with x when the system needs "pairs",
    an independent draw when it needs "domains", else None; z: N(0, I) noise [B, z_dim].
    """

    x: torch.Tensor
    labels: Optional[torch.Tensor]
    second: Optional[torch.Tensor]
    z: torch.Tensor


class StepContext(Protocol):
    """What the trainer hands `System.train_step`.

    nets: the system's networks by name (on the run's device); state: the per-run state
    (`System.init_state`, with "step" = critic updates so far); impl: the kernels to use
    (pass it to gankernels' functions); defaults: the variant's settings in force; step:
    generator steps taken before this one, of `steps` in the run (a schedule such as
    progressive growing derives its phase from the two, so a resumed run continues it).
    """

    nets: dict[str, nn.Module]
    state: dict[str, Any]
    impl: Optional[str]
    defaults: Defaults
    step: int
    steps: int

    def batch(self) -> Batch:
        """A fresh batch (this rank's shard, the run's seeded streams)."""

    def update(self, group: str, loss: torch.Tensor) -> None:
        """Zero the group's gradients, backpropagate `loss`, average the group's gradients
        over the processes and step its optimiser."""


class System(Variant):
    """A variant with its own networks and optimisers (conditional, image-to-image and encoder
    GANs). Subclass it and define `build`, `optimizers` and `train_step`; `generate` and
    `evaluate` default to the network called "generator" on N(0, I) noise and the metrics of
    docs/math.md section 7.

    The trainer calls `build` once (before the optimisers, a checkpoint's weights and the
    process group), makes one optimiser per `optimizers()` entry, then per generator step calls
    `train_step`, which draws batches and calls `update` for each optimiser step it takes, in
    the order it wants. Every network and optimiser, the state and the random streams are
    checkpointed, so a resumed run continues exactly.

    `needs` lists what the data must carry (NEEDS): "labels", "pairs" (a second domain row for
    row) or "domains" (a second domain, drawn independently); the trainer refuses other data.
    """

    needs: tuple[str, ...] = ()

    def __init__(
        self,
        name: str,
        description: str,
        defaults: Optional[Defaults] = None,
        *,
        needs: Iterable[str] = (),
    ) -> None:
        needs = tuple(needs)
        unknown = [n for n in needs if n not in NEEDS]
        if unknown or ("pairs" in needs and "domains" in needs):
            raise ValueError(
                f"needs of variant {name!r} must be some of {NEEDS} (not both 'pairs' and "
                f"'domains'), got {needs!r}"
            )
        self.needs = needs
        super().__init__(name, description, defaults)

    def build(self, spec: ModelSpec, data: DataSet) -> dict[str, nn.Module]:
        """The networks by name, for models of `spec`'s size on `data` (its `sample_shape`,
        `n_classes`, `second`'s shape); the trainer seeds the RNG before calling it."""
        raise NotImplementedError(f"variant {self.name!r} does not define build")

    def optimizers(self) -> dict[str, OptimizerGroup]:
        """The optimisers by name."""
        raise NotImplementedError(f"variant {self.name!r} does not define optimizers")

    def train_step(
        self, run: StepContext
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """One generator step: (the last critic loss, the generator loss, detached scalars to
        log), losses as 0-dim tensors (the trainer checks them for NaN / Inf)."""
        raise NotImplementedError(f"variant {self.name!r} does not define train_step")

    def generate(
        self,
        nets: dict[str, nn.Module],
        spec: ModelSpec,
        data: DataSet,
        n: int,
        seed: int,
        device: torch.device | str = "cpu",
    ) -> torch.Tensor:
        """n samples (CPU float32) for `sample` and the metrics, from a noise stream seeded
        with `seed`; the networks are in eval mode."""
        from .train.models import generate

        return generate(nets["generator"], spec.z_dim, n, seed, device)

    def evaluate(
        self,
        nets: dict[str, nn.Module],
        spec: ModelSpec,
        data: DataSet,
        reference: torch.Tensor,
        n: int,
        seed: int,
        device: torch.device | str = "cpu",
    ) -> dict[str, float]:
        """The quality metrics of the trained networks (default: docs/math.md section 7 on
        `generate`'s samples against `reference`, real samples of `data`)."""
        from .train.metrics import evaluate_samples

        samples = self.generate(nets, spec, data, n, seed, device)
        if not torch.isfinite(samples).all():
            return {"finite": 0.0}
        return evaluate_samples(samples, data, reference, max_pairs=n)

    def check_data(self, data: DataSet) -> None:
        """Raise ValueError naming what this system needs and `data` lacks."""
        missing = []
        if "labels" in self.needs and data.labels is None:
            missing.append("class labels")
        if ("pairs" in self.needs or "domains" in self.needs) and data.second is None:
            missing.append("a second domain")
        if missing:
            raise ValueError(
                f"data: variant {self.name!r} needs {' and '.join(missing)}, which "
                f"{data.name!r} does not have; {_sets_with(self.needs)}"
            )

    def critic_loss(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"variant {self.name!r} is a System: the trainer calls its train_step")

    generator_loss = critic_loss


def _sets_with(needs: tuple[str, ...]) -> str:
    if "pairs" in needs or "domains" in needs:
        return "the built-in two-domain sets are digits-inverted, digits-rotated, digits-edges"
    return "ring8, grid25 and digits have labels (and the two-domain sets, the digits' own)"


# --- the registry ------------------------------------------------------------------------------


class PluginFailure(NamedTuple):
    """An entry point that could not be turned into a variant."""

    name: str
    distribution: str
    value: str
    error: str


class _Registry:
    def __init__(self) -> None:
        self.loaded = False
        self.variants: dict[str, Variant] = {}
        self.sources: dict[str, str] = {}  # variant name -> distribution name
        self.conflicts: dict[str, list[str]] = {}  # variant name -> every distribution claiming it
        self.failures: list[PluginFailure] = []


_REGISTRY = _Registry()
_LOCK = threading.RLock()


def _entry_points() -> Iterable[tuple[importlib.metadata.EntryPoint, str]]:
    """(entry point, distribution name) for every entry point of the group, in a stable order."""
    found = []
    for ep in importlib.metadata.entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        found.append((ep, dist.name if dist is not None else "<unknown distribution>"))
    return sorted(found, key=lambda pair: (pair[0].name, pair[1]))


def _as_variant(obj: Any, ep_name: str) -> Variant:
    if isinstance(obj, type) and issubclass(obj, Variant):
        obj = obj()
    if not isinstance(obj, Variant):
        raise TypeError(
            f"entry point {ep_name!r} refers to a {type(obj).__name__}, "
            f"not a gankernels.variants.Variant"
        )
    if obj.name != ep_name:
        raise ValueError(
            f"entry point {ep_name!r} refers to a variant named {obj.name!r}; "
            f"the two names must match"
        )
    return obj


def _load() -> _Registry:
    """Read the entry points once per process; failures and conflicts are recorded, not raised."""
    reg = _REGISTRY
    with _LOCK:
        if reg.loaded:
            return reg
        claims: dict[str, list[tuple[importlib.metadata.EntryPoint, str]]] = {}
        for ep, dist in _entry_points():
            claims.setdefault(ep.name, []).append((ep, dist))
        for name, eps in claims.items():
            dists = sorted({dist for _, dist in eps})
            if len(dists) > 1:
                reg.conflicts[name] = dists
                warnings.warn(
                    f"gankernels variant {name!r} is claimed by several distributions: "
                    f"{' and '.join(dists)}; uninstall one of them",
                    PluginLoadWarning,
                    stacklevel=3,
                )
                continue
            ep, dist = eps[0]
            try:
                variant = _as_variant(ep.load(), name)
            except Exception as exc:  # noqa: BLE001  (any plugin error is reported, never fatal)
                error = f"{type(exc).__name__}: {exc}"
                reg.failures.append(PluginFailure(name, dist, ep.value, error))
                warnings.warn(
                    f"gankernels variant plugin {name!r} from distribution {dist!r} "
                    f"({ep.value}) failed to load: {error}",
                    PluginLoadWarning,
                    stacklevel=3,
                )
                continue
            reg.variants[name] = variant
            reg.sources[name] = dist
        reg.loaded = True
        return reg


def reload() -> None:
    """Forget what was read (and registered in process) so the next call reads the entry points
    again: after installing a plugin into the running interpreter, and in tests."""
    global _REGISTRY
    with _LOCK:
        # A distribution installed since start-up is only seen once the finders' caches go.
        importlib.invalidate_caches()
        _REGISTRY = _Registry()


def available() -> list[str]:
    """The sorted names of the variants: those that loaded, and those that two distributions
    claim (`get` raises for them); plugins that failed to load are in `failed()` instead."""
    reg = _load()
    return sorted(set(reg.variants) | set(reg.conflicts))


def failed() -> list[PluginFailure]:
    """The entry points that failed to load, with their distribution and the error."""
    return list(_load().failures)


def distribution_of(name: str) -> str:
    """The distribution that provides variant `name` (IN_PROCESS for `register()`ed ones)."""
    get(name)
    return _load().sources[name]


def _conflict_message(name: str, dists: list[str]) -> str:
    return (
        f"gankernels variant {name!r} is claimed by more than one distribution: "
        f"{' and '.join(repr(d) for d in dists)}; uninstall one of them (or give one "
        f"entry point another name)"
    )


def get(name: str) -> Variant:
    """The variant called `name`. An unknown name raises KeyError listing the known names and
    the nearest match; a name claimed twice raises VariantConflictError naming both."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    reg = _load()
    if name in reg.conflicts:
        raise VariantConflictError(_conflict_message(name, reg.conflicts[name]))
    if name in reg.variants:
        return reg.variants[name]
    known = available()
    message = f"unknown GAN variant {name!r}"
    near = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    if near:
        message += f"; did you mean {near[0]!r}?"
    message += f" Known variants: {', '.join(known) if known else '(none)'}"
    for failure in reg.failures:
        if failure.name == name:
            message += (
                f". A plugin named {name!r} (distribution {failure.distribution}) "
                f"failed to load: {failure.error}"
            )
    raise KeyError(message)


def register(variant: Variant, *, replace: bool = False) -> Variant:
    """Register `variant` in this process (no entry point needed). A name that is already taken
    raises VariantConflictError naming its distribution, unless `replace=True`."""
    if not isinstance(variant, Variant):
        raise TypeError(
            f"variant must be a gankernels.variants.Variant, got {type(variant).__name__}"
        )
    reg = _load()
    with _LOCK:
        name = variant.name
        if not replace:
            if name in reg.conflicts:
                raise VariantConflictError(_conflict_message(name, reg.conflicts[name]))
            if name in reg.variants and reg.variants[name] is not variant:
                raise VariantConflictError(_conflict_message(name, [reg.sources[name], IN_PROCESS]))
        reg.conflicts.pop(name, None)
        reg.variants[name] = variant
        reg.sources[name] = IN_PROCESS
    return variant


# --- command line ------------------------------------------------------------------------------


def format_variants(names: Optional[Iterable[str]] = None) -> str:
    """Every variant (or those named) with its description, source and defaults, then failures."""
    reg = _load()
    lines = []
    for name in names if names is not None else available():
        if name in reg.conflicts:
            lines.append(f"{name}  CONFLICT: {_conflict_message(name, reg.conflicts[name])}")
            continue
        v = get(name)
        if isinstance(v, System):
            kind = "system" + (f", needs {' and '.join(v.needs)}" if v.needs else "")
        else:
            kind = f"critic: {v.critic_kind}"
        lines.append(f"{name}  ({reg.sources[name]}, {kind})")
        lines.append(f"    {v.description}")
        lines.append(f"    defaults: {v.describe_defaults()}")
    if names is None and reg.failures:
        lines.append("")
        lines.append("failed plugins:")
        for f in reg.failures:
            lines.append(f"{f.name}  FAILED  (distribution {f.distribution}, {f.value}): {f.error}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    with warnings.catch_warnings():
        # The listing shows the failures itself; the warning would say it twice.
        warnings.simplefilter("ignore", PluginLoadWarning)
        try:
            text = format_variants(args.names or None)
        except (KeyError, VariantConflictError) as exc:
            print(f"error: {exc.args[0]}")
            return 2
    print(text)
    return 0


def add_variants_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `variants [NAME ...]`: list the GAN variants with their defaults, and failed plugins."""
    parser = subparsers.add_parser(
        "variants",
        help="list the GAN variants (built-in and plugins) with their defaults",
        description="List every GAN variant found through the entry-point group "
        f"{GROUP!r}, with its description and defaults, and plugins that failed.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="only these variants")
    parser.set_defaults(run=_run)
    return parser
