"""GANKERNELS_IMPL chooses the implementation wherever `impl` is left at its default: every
public function and the trainer (docs/architecture.md, "Which backend runs")."""

from __future__ import annotations

import pytest
import torch
from conftest import device_for

import gankernels as gk
from gankernels.testing import ops_run


def _critic() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def _calls() -> dict:
    critic = _critic()
    real, fake = torch.randn(6, 3), torch.randn(6, 3)
    v, w = torch.randn(6), torch.randn(6)
    return {
        "gradient_penalty": lambda: gk.gradient_penalty(critic, real, fake),
        "r1_penalty": lambda: gk.r1_penalty(critic, real),
        "r2_penalty": lambda: gk.r2_penalty(critic, fake),
        "dragan_penalty": lambda: gk.dragan_penalty(critic, real),
        "discriminator_loss": lambda: gk.discriminator_loss(v, w, kind="hinge"),
        "generator_loss": lambda: gk.generator_loss(w, kind="nonsaturating"),
        "clip_weights_": lambda: gk.clip_weights_(critic, 0.01),
    }


@pytest.mark.parametrize("name", sorted(_calls()))
def test_environment_variable_chooses_the_implementation(name, monkeypatch):
    device_for("cpu")
    call = _calls()[name]
    monkeypatch.setenv("GANKERNELS_IMPL", "ref")
    assert ops_run(call) == set(), f"{name} ran a fused op under GANKERNELS_IMPL=ref"
    monkeypatch.setenv("GANKERNELS_IMPL", "cpu")
    assert ops_run(call), f"{name} ran no fused op under GANKERNELS_IMPL=cpu"
    monkeypatch.delenv("GANKERNELS_IMPL")
    assert ops_run(call), f"{name} ran no fused op with impl left at auto"
    monkeypatch.setenv("GANKERNELS_IMPL", "fast")
    with pytest.raises(ValueError, match="impl must be one of"):
        call()


def test_an_explicit_impl_wins_over_the_environment(monkeypatch):
    device_for("cpu")
    monkeypatch.setenv("GANKERNELS_IMPL", "ref")
    v = torch.randn(6)
    assert ops_run(lambda: gk.discriminator_loss(v, v, kind="hinge", impl="cpu"))


def test_trainer_follows_the_environment_variable(monkeypatch, tmp_path):
    device_for("cpu")
    from gankernels.train.trainer import TrainConfig, Trainer

    monkeypatch.setenv("GANKERNELS_IMPL", "ref")
    cfg = TrainConfig(
        variant="wgan-gp",
        data="ring8",
        steps=1,
        batch_size=16,
        hidden=8,
        depth=1,
        n_eval=100,
        plots=False,
        progress=False,
        verbose=False,
        out=str(tmp_path / "run"),
    )
    trainer = Trainer(cfg)
    try:
        assert trainer.impl is None
        assert trainer.summary({})["impl"] == "ref -> ref"
        # The variant's losses and penalty then run the reference: no fused op in a step.
        assert ops_run(trainer.run) == set()
    finally:
        trainer.close()


def test_variants_is_an_attribute_of_the_package():
    """`import gankernels` alone gives gankernels.variants, as the README uses it (a fresh
    interpreter, so that no earlier import has loaded the submodule)."""
    import subprocess
    import sys

    code = "import gankernels; print(' '.join(gankernels.variants.available()))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "wgan-gp" in done.stdout.split()
