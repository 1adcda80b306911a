"""Checkpoints: atomic writes, weights_only loading, exact resume, NaN stops keep the last one."""

from __future__ import annotations

import copy
import os

import pytest
import torch

from gankernels import variants
from gankernels.train import TrainConfig, Trainer, TrainingDiverged, train
from gankernels.train import checkpoint as ckpt_module
from gankernels.train.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread; on a busy machine a second one only spins."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(out, **kw) -> TrainConfig:
    """A run small enough for a unit test: a 16-wide MLP, 32 samples per step."""
    base = dict(
        variant="wgan-gp",
        data="ring8",
        out=str(out),
        steps=8,
        batch_size=32,
        hidden=16,
        depth=2,
        z_dim=2,
        impl="ref",
        n_eval=100,
        progress=False,
        plots=False,
        verbose=False,
        log_every=2,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_save_is_atomic_and_loads_weights_only(tmp_path):
    path = str(tmp_path / "checkpoint.pt")
    save_checkpoint(path, {"format": 1, "w": torch.arange(3), "nested": {"a": [1, 2.5, "x"]}})
    assert load_checkpoint(path)["nested"] == {"a": [1, 2.5, "x"]}
    assert load_checkpoint(str(tmp_path))["w"].tolist() == [0, 1, 2]  # a directory works too
    assert os.listdir(tmp_path) == ["checkpoint.pt"]  # no temporary file left


def test_interrupted_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / "c.pt")
    save_checkpoint(path, {"format": 1, "step": 1})

    def dying_save(obj, f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # the process is killed in the middle of the write

    monkeypatch.setattr(ckpt_module.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"format": 1, "step": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert os.listdir(tmp_path) == ["c.pt"]


def test_not_a_checkpoint(tmp_path):
    torch.save({"format": 99}, str(tmp_path / "x.pt"))
    with pytest.raises(ValueError, match="not a gankernels training checkpoint"):
        load_checkpoint(str(tmp_path / "x.pt"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_checkpoint(str(tmp_path / "none.pt"))


def test_rng_round_trip():
    import random

    import numpy as np

    gen = torch.Generator().manual_seed(5)
    state = capture_rng({"g": gen})
    first = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(3, generator=gen))
    restore_rng(state, {"g": gen})
    again = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(3, generator=gen))
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert first[2] == again[2] and torch.equal(first[3], again[3])


def _assert_same_run(a: Trainer, b: Trainer) -> None:
    for m_a, m_b in ((a.generator, b.generator), (a.critic, b.critic)):
        other = m_b.state_dict()
        for name, p in m_a.state_dict().items():
            assert torch.equal(p, other[name]), f"parameter {name} differs after resume"
    sa, sb = a.opt_c.state_dict()["state"], b.opt_c.state_dict()["state"]
    for k in sa:
        for key, value in sa[k].items():
            assert torch.equal(value, sb[k][key]), f"optimiser state {key} differs after resume"
    assert int(a.state["step"]) == int(b.state["step"])
    for key, value in a.state.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, b.state[key]), f"variant state {key} differs after resume"


@pytest.mark.parametrize("variant", ["wgan-gp", "wgan", "sngan", "sobolev-gan", "mmd-gan"])
def test_resume_continues_exactly(tmp_path, variant):
    # 20 steps in one go == 10 steps, a checkpoint, and a resumed 10 (the 200 = 100 + 100,
    # scaled down). wgan-gp draws interpolation eps from the global RNG; wgan clips weights;
    # sngan keeps power-iteration vectors in its critic's buffers, sobolev-gan a multiplier in
    # its state; mmd-gan has a features critic.
    # A constant learning rate: a linear decay is tied to the total step count (next test).
    whole = Trainer(tiny(tmp_path / "whole", variant=variant, steps=20, lr_decay="none"))
    whole.run()
    half = tiny(tmp_path / "split", variant=variant, steps=10, lr_decay="none")
    first = train(half)
    assert first.step == 10
    assert load_checkpoint(str(tmp_path / "split"))["step"] == 10
    resumed = Trainer(tiny(tmp_path / "split", variant=variant, steps=20, resume=True))
    assert resumed.step == 10
    resumed.run()
    _assert_same_run(whole, resumed)
    # the metrics of both halves are in one file, each step once, in order
    steps = [r["step"] for r in _records(tmp_path / "split") if r["kind"] == "train"]
    assert steps == sorted(set(steps)) and steps[:5] == [2, 4, 6, 8, 10] and steps[-1] == 20


def test_interrupted_run_resumes_exactly_with_lr_decay(tmp_path, monkeypatch):
    whole = Trainer(tiny(tmp_path / "whole", steps=12))
    whole.run()
    calls = {"n": 0}
    real_save = torch.save

    def die_on_second_save(obj, f):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # killed after the step-6 checkpoint
        real_save(obj, f)

    monkeypatch.setattr(ckpt_module.torch, "save", die_on_second_save)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(tmp_path / "split", steps=12, ckpt_every=6, eval_every=12))
    monkeypatch.undo()
    resumed = Trainer(tiny(tmp_path / "split", resume=True, steps=None))
    assert resumed.step == 6 and resumed.cfg.steps == 12
    resumed.run()
    _assert_same_run(whole, resumed)


def _records(out):
    import json

    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_existing_checkpoint_needs_resume(tmp_path):
    train(tiny(tmp_path, steps=2))
    with pytest.raises(FileExistsError, match="pass --resume"):
        train(tiny(tmp_path, steps=4))
    with pytest.raises(ValueError, match="resume: lr_critic=0.5 differs from the checkpoint"):
        train(tiny(tmp_path, steps=4, resume=True, lr_critic=0.5))


def test_kill_during_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    calls = {"n": 0}
    real_save = torch.save

    def save_then_die(obj, f):
        calls["n"] += 1
        if calls["n"] == 2:
            f.write(b"partial")
            raise KeyboardInterrupt
        real_save(obj, f)

    monkeypatch.setattr(ckpt_module.torch, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(tmp_path, steps=8, ckpt_every=4))
    monkeypatch.undo()
    saved = load_checkpoint(str(tmp_path))
    assert saved["step"] == 4
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    # and the run can be resumed from it
    assert Trainer(tiny(tmp_path, steps=8, resume=True)).step == 4


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    base = variants.get("wgan-gp")
    poisoned = copy.copy(base)
    calls = {"n": 0}

    def critic_loss(*args, **kwargs):
        loss, logs = base.critic_loss(*args, **kwargs)
        calls["n"] += 1
        # generator step 7 runs critic steps 31..35 (n_critic = 5)
        if calls["n"] > 30:
            loss = loss * float("nan")
        return loss, logs

    poisoned.critic_loss = critic_loss
    with pytest.raises(TrainingDiverged) as info:
        train(tiny(tmp_path, steps=12, ckpt_every=4, log_every=4), variant=poisoned)
    message = str(info.value)
    assert "critic loss became nan at generator step 7" in message
    assert "last good checkpoint (generator step 4)" in message
    saved = load_checkpoint(str(tmp_path))
    assert saved["step"] == 4
    assert all(torch.isfinite(p).all() for p in saved["critic"].values())


def test_ema_generator_is_kept_evaluated_saved_and_resumed(tmp_path):
    """--ema-decay: a moving average of the generator's weights after every generator step
    (gankernels.ema_), what evaluation samples, saved as "generator_ema", resumed exactly."""
    whole = Trainer(tiny(tmp_path / "whole", steps=12, lr_decay="none", ema_decay=0.5))
    whole.run()
    g, g_ema = whole.generator, whole.generator_ema
    assert g_ema is not None and not any(p.requires_grad for p in g_ema.parameters())
    # the average differs from the trained weights, and evaluation samples the average
    assert any(not torch.equal(a, b) for a, b in zip(g.parameters(), g_ema.parameters()))
    from gankernels.train.models import generate

    torch.testing.assert_close(
        whole.generate(50, seed=3), generate(g_ema, whole.cfg.z_dim, 50, 3, whole.device)
    )
    saved = load_checkpoint(str(tmp_path / "whole"))
    for key, value in g_ema.state_dict().items():
        assert torch.equal(saved["generator_ema"][key], value)
    # `gankernels sample` loads the average
    from gankernels.train.cli import load_generator

    loaded, _ = load_generator(str(tmp_path / "whole"))
    for a, b in zip(loaded.parameters(), g_ema.parameters()):
        assert torch.equal(a, b)
    # 6 + a resumed 6 == 12 in one go, the average included
    train(tiny(tmp_path / "split", steps=6, lr_decay="none", ema_decay=0.5))
    resumed = Trainer(tiny(tmp_path / "split", steps=12, resume=True))
    resumed.run()
    for a, b in zip(resumed.generator_ema.parameters(), g_ema.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match=r"ema_decay must be a number in \[0, 1\), got 1.5"):
        Trainer(tiny(tmp_path / "bad", ema_decay=1.5))
