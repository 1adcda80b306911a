"""LeCam against the authors' formula written out step by step with Python floats."""

from __future__ import annotations

import pytest
import torch

import gankernels
from gankernels import LeCam


def textbook_lecam(batches, decay, debias):
    """Per step: update the averages with this batch's means, then
    mean(relu(real - alpha_F)^2) + mean(relu(alpha_R - fake)^2)."""
    ema_r = ema_f = 0.0
    values = []
    for t, (real, fake) in enumerate(batches, start=1):
        ema_r = decay * ema_r + (1 - decay) * sum(real) / len(real)
        ema_f = decay * ema_f + (1 - decay) * sum(fake) / len(fake)
        a_r, a_f = (ema_r / (1 - decay**t), ema_f / (1 - decay**t)) if debias else (ema_r, ema_f)
        values.append(
            sum(max(r - a_f, 0.0) ** 2 for r in real) / len(real)
            + sum(max(a_r - f, 0.0) ** 2 for f in fake) / len(fake)
        )
    return values


BATCHES = [
    ([1.5, 0.2, -0.3, 2.0], [-1.0, 0.4, 0.1]),
    ([0.9, 1.1, 0.0, 0.5], [-0.5, -2.0, 0.3]),
    ([2.5, -0.7, 1.2, 0.8], [0.6, -0.1, -1.4]),
]


@pytest.mark.parametrize("debias", (True, False))
@pytest.mark.parametrize("decay", (0.99, 0.5))
def test_matches_the_formula_over_steps(decay, debias):
    reg = LeCam(decay=decay, debias=debias)
    want = textbook_lecam(BATCHES, decay, debias)
    for (real, fake), w in zip(BATCHES, want):
        got = reg(torch.tensor(real), torch.tensor(fake))
        assert got.dtype == torch.float32 and got.dim() == 0
        assert got.item() == pytest.approx(w, rel=1e-5, abs=1e-7)
    assert int(reg.steps) == 3


def test_debiased_average_is_the_first_batch_mean():
    reg = LeCam()
    reg(torch.tensor([1.0, 3.0]), torch.tensor([-2.0]))
    assert reg.ema_real.item() == pytest.approx(0.02)  # (1 - 0.99) * 2, before the correction
    # t = 2: (0.99 * 0.02 + 0.01 * 2) / (1 - 0.99^2) = 2 (both batches have mean 2), so
    # alpha_R = 2: the fake outputs -2 and 1.5 lie below it by 4 and 0.5.
    got = reg(torch.tensor([2.0]), torch.tensor([-2.0, 1.5]))
    assert (reg.ema_real / (1 - 0.99**2)).item() == pytest.approx(2.0, rel=1e-6)
    alpha_fake = (0.99 * 0.01 * -2.0 + 0.01 * -0.25) / (1 - 0.99**2)
    want = (2.0 - alpha_fake) ** 2 + (4.0**2 + 0.5**2) / 2
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_gradient_reaches_the_scores_not_the_averages():
    reg = LeCam(decay=0.5)
    real = torch.tensor([0.5, 2.0, -1.0], requires_grad=True)
    fake = torch.tensor([1.0, -0.5], requires_grad=True)
    value = reg(real, fake)
    value.backward()
    # alpha_F = mean(fake) = 0.25, alpha_R = mean(real) = 0.5 (debiased, first step)
    want_real = torch.tensor([2 * 0.25, 2 * 1.75, 0.0]) / 3
    want_fake = torch.tensor([0.0, -2 * 1.0]) / 2
    torch.testing.assert_close(real.grad, want_real)
    torch.testing.assert_close(fake.grad, want_fake)
    assert not reg.ema_real.requires_grad and not reg.ema_fake.requires_grad


def test_no_host_synchronisation(monkeypatch):
    """Every step stays on the device: no .item(), bool() or float() of a tensor."""
    reg = LeCam()
    real, fake = torch.randn(8), torch.randn(8)
    reg(real, fake)

    def refuse(*args, **kwargs):
        raise AssertionError("LeCam read a tensor on the host")

    for name in ("item", "__bool__", "__float__", "__int__", "tolist", "cpu", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, refuse)
    reg(real, fake)
    reg(real.half(), fake.half())


def test_half_scores_are_regularised_in_float32():
    reg, ref = LeCam(), LeCam()
    real, fake = torch.randn(64) * 3, torch.randn(64)
    got = reg(real.to(torch.bfloat16), fake.to(torch.bfloat16))
    want = ref(real.to(torch.bfloat16).float(), fake.to(torch.bfloat16).float())
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want)


def test_state_dict_resumes_exactly():
    reg = LeCam()
    for real, fake in BATCHES[:2]:
        reg(torch.tensor(real), torch.tensor(fake))
    resumed = LeCam()
    resumed.load_state_dict(reg.state_dict())
    real, fake = map(torch.tensor, BATCHES[2])
    assert resumed(real, fake).item() == reg(real, fake).item()
    assert set(reg.state_dict()) == {"ema_real", "ema_fake", "steps"}


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"LeCam: decay must be a number in \[0, 1\), got 1.0"):
        LeCam(decay=1.0)
    reg = LeCam()
    with pytest.raises(TypeError, match=r"LeCam: real_scores must be a torch.Tensor"):
        reg([1.0], torch.zeros(2))
    with pytest.raises(TypeError, match=r"LeCam: fake_scores must be floating point"):
        reg(torch.zeros(2), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"LeCam: fake_scores must hold at least one output"):
        reg(torch.zeros(2), torch.zeros(0))
    with pytest.raises(ValueError, match=r"LeCam: real_scores and fake_scores must be on one"):
        reg(torch.zeros(2), torch.zeros(2, device="meta"))
    assert int(reg.steps) == 0, "a refused call must not move the averages"


def test_exported():
    assert "LeCam" in gankernels.__all__ and gankernels.LeCam is LeCam
