"""The trainer's defaults: the point preset's model widths and a variant's point-data values
(`Defaults.points`), and how flags override them. No training: building a Trainer is enough."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from gankernels import variants
from gankernels.train import TrainConfig, Trainer
from gankernels.train.models import ModelSpec, build_models
from gankernels.train.trainer import POINTS_PRESET
from gankernels.variants import Defaults


def _trainer(tmp_path, **kw) -> Trainer:
    base = dict(
        variant="wgan-gp",
        data="ring8",
        out=str(tmp_path / "run"),
        steps=2,
        impl="ref",
        progress=False,
        plots=False,
        verbose=False,
    )
    base.update(kw)
    return Trainer(TrainConfig(**base))


def _widths(module: torch.nn.Module) -> list[int]:
    return [m.out_features for m in module.modules() if isinstance(m, torch.nn.Linear)][:-1]


def test_point_preset_has_a_wider_generator(tmp_path):
    t = _trainer(tmp_path)
    assert (POINTS_PRESET.hidden, POINTS_PRESET.generator_hidden) == (128, 256)
    assert _widths(t.generator) == [256] * 3 and _widths(t.critic) == [128] * 3
    assert (t.cfg.hidden, t.cfg.generator_hidden) == (128, 256)


@pytest.mark.parametrize(
    "hidden, generator_hidden, want",
    [
        (16, None, (16, 16)),  # --hidden alone sizes both models
        (16, 32, (16, 32)),
        (None, 64, (128, 64)),
    ],
)
def test_width_flags(tmp_path, hidden, generator_hidden, want):
    t = _trainer(tmp_path, hidden=hidden, generator_hidden=generator_hidden)
    assert (_widths(t.critic)[0], _widths(t.generator)[0]) == want
    assert (t.spec.hidden, t.spec.generator_width) == want


def test_resume_keeps_the_generator_width(tmp_path):
    first = _trainer(tmp_path, hidden=8, generator_hidden=24, depth=1, batch_size=8, n_eval=20)
    first.run()
    resumed = _trainer(tmp_path, steps=3, resume=True, batch_size=None, n_eval=20)
    assert (resumed.cfg.hidden, resumed.cfg.generator_hidden) == (8, 24)
    assert _widths(resumed.generator) == [24]
    with pytest.raises(ValueError, match="resume: generator_hidden=32 differs"):
        _trainer(tmp_path, steps=3, resume=True, generator_hidden=32, n_eval=20)


def test_spec_without_generator_hidden_means_hidden():
    # A checkpoint's spec written before generator_hidden existed builds the same models.
    old = {
        "sample_shape": [2],
        "z_dim": 2,
        "hidden": 16,
        "depth": 2,
        "critic_kind": "score",
        "bounded": False,
    }
    spec = ModelSpec.from_dict(old)
    assert spec.generator_width == 16
    g, _ = build_models(spec)
    assert _widths(g) == [16, 16]
    wide = dataclasses.replace(spec, generator_hidden=40)
    assert ModelSpec.from_dict(wide.to_dict()) == wide
    assert _widths(build_models(wide)[0]) == [40, 40]


@pytest.mark.parametrize(
    "name, critic, generator",
    [("wgan-gp", 3e-3, 3e-3), ("wgan-lp", 3e-3, 3e-3), ("nsgan", 1e-3, 1e-4)],
)
def test_point_data_values_apply_on_points_only(tmp_path, name, critic, generator):
    base = variants.get(name).defaults
    on_points = _trainer(tmp_path / "p", variant=name).variant.defaults
    assert (on_points.lr_critic, on_points.lr_generator) == (critic, generator)
    assert (on_points.n_critic, on_points.betas) == (base.n_critic, base.betas)
    on_images = _trainer(tmp_path / "i", variant=name, data="digits").variant.defaults
    assert (on_images.lr_critic, on_images.lr_generator) == (base.lr_critic, base.lr_generator)
    # a flag beats both, and the config records the values in force
    flagged = _trainer(tmp_path / "f", variant=name, lr_critic=5e-4)
    assert (flagged.variant.defaults.lr_critic, flagged.variant.defaults.lr_generator) == (
        5e-4,
        generator,
    )
    assert (flagged.cfg.lr_critic, flagged.cfg.lr_generator) == (5e-4, generator)


def test_variant_without_point_values_is_unchanged(tmp_path):
    d = _trainer(tmp_path, variant="wgan").variant.defaults
    assert d == variants.get("wgan").defaults and not d.points


def test_points_are_checked_and_described():
    d = Defaults(lr_critic=1e-4, points={"lr_critic": 3e-3, "betas": [0.0, 0.9]})
    assert d.for_points().lr_critic == 3e-3 and d.for_points().betas == (0.0, 0.9)
    assert d.as_dict()["points"] == {"lr_critic": 3e-3, "betas": [0.0, 0.9]}
    with pytest.raises(ValueError, match="'lr' are not Defaults fields"):
        Defaults(points={"lr": 1e-3})
    with pytest.raises(ValueError, match="lr_generator must be a finite number > 0"):
        Defaults(points={"lr_generator": -1.0})
    with pytest.raises(ValueError, match="not Defaults fields"):
        Defaults(points={"points": {}})
    text = variants.get("nsgan").describe_defaults()
    assert text.endswith("on point data: lr_critic=0.001 lr_generator=0.0001"), text


@pytest.mark.parametrize(
    "variant, overrides, steps",
    [
        ("wgan-gp", {}, 2000),  # 5 critic steps per generator step
        ("hinge", {}, 10_000),  # 1
        ("hinge", {"n_critic": 3}, 3334),  # rounded up: the budget is spent in full
        ("hinge", {"steps": 7}, 7),  # --steps wins
    ],
)
def test_point_preset_is_a_budget_of_critic_steps(tmp_path, variant, overrides, steps):
    kw = {"steps": None, **overrides}
    t = _trainer(tmp_path, variant=variant, **kw)
    assert POINTS_PRESET.critic_steps == 10_000 and POINTS_PRESET.steps is None
    assert t.cfg.steps == steps


def test_image_preset_is_a_number_of_generator_steps(tmp_path):
    for variant in ("wgan-gp", "hinge"):
        t = _trainer(tmp_path / variant, variant=variant, data="digits", steps=None)
        assert t.cfg.steps == 2000
