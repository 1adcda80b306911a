"""Sample-quality metrics on cases with known answers (docs/math.md section 7)."""

from __future__ import annotations

import math
import os

import pytest
import torch

from gankernels.train.data import digits_labels, digits_set, toy_set
from gankernels.train.metrics import (
    digits_coverage_kl,
    evaluate_samples,
    format_metrics,
    mmd2,
    modes_and_quality,
    precision_recall,
    sliced_wasserstein,
)


@pytest.mark.parametrize("name, k", [("ring8", 8), ("grid25", 25)])
def test_perfect_samples_capture_every_mode(name, k):
    ds = toy_set(name, n=2500, seed=11)
    modes, hq = modes_and_quality(ds.data, ds.centres, ds.std)
    assert modes == k
    # P(||N(0, s^2 I_2)|| <= 3s) = 1 - exp(-9/2) = 98.89 %
    assert hq == pytest.approx(100 * (1 - math.exp(-4.5)), abs=1.0)


def test_samples_at_one_mode_capture_one():
    ds = toy_set("grid25", n=10, seed=0)
    noise = torch.randn(2500, 2, generator=torch.Generator().manual_seed(0))
    samples = ds.centres[7] + ds.std * noise
    modes, hq = modes_and_quality(samples, ds.centres, ds.std)
    assert modes == 1 and hq > 95


def test_hq_uses_the_scaled_std():
    ds = toy_set("ring8", n=10, seed=0)
    # 4 std away from a centre (scaled std): captured by nothing
    far = ds.centres + torch.tensor([4 * ds.std, 0.0])
    assert modes_and_quality(far, ds.centres, ds.std) == (0, 0.0)
    near = ds.centres + torch.tensor([2.5 * ds.std, 0.0])
    assert modes_and_quality(near, ds.centres, ds.std) == (8, 100.0)


def test_mmd2_same_distribution_is_near_zero_and_shift_is_large():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(800, 2, generator=g), torch.randn(800, 2, generator=g)
    same = mmd2(x, y)
    shifted = mmd2(x, y + 2.0)
    assert abs(same) < 0.005
    assert shifted > 0.3
    assert mmd2(x, y + 0.5) < shifted


def test_mmd2_is_unbiased():
    # E[MMD^2_u] = 0 for equal distributions: the mean over many draws straddles zero.
    g = torch.Generator().manual_seed(1)
    vals = [
        mmd2(torch.randn(30, 3, generator=g), torch.randn(30, 3, generator=g), bandwidth=1.0)
        for _ in range(100)
    ]
    mean = sum(vals) / len(vals)
    sd = (sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5
    assert abs(mean) < 3 * sd / math.sqrt(len(vals))
    assert min(vals) < 0  # a biased (V-statistic) estimate is never negative


def test_sliced_wasserstein_of_a_shift():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2000, 2, generator=g)
    assert sliced_wasserstein(x, x) == 0.0
    # a shift by (1, 0) projects to |u_0|, whose mean over random unit directions is 2/pi
    assert sliced_wasserstein(x, x + torch.tensor([1.0, 0.0]), n_projections=500) == pytest.approx(
        2 / math.pi, abs=0.05
    )


def test_precision_recall_known_cases():
    g = torch.Generator().manual_seed(3)
    real = torch.randn(1000, 2, generator=g)
    p, r = precision_recall(real, torch.randn(1000, 2, generator=g))
    assert p > 0.9 and r > 0.9
    # all samples in a tiny region of the real support: precise, no recall
    p, r = precision_recall(real, 0.05 * torch.randn(1000, 2, generator=g))
    assert p > 0.95 and r < 0.2
    # far away: neither
    p, r = precision_recall(real, torch.randn(1000, 2, generator=g) + 20)
    assert p == 0.0 and r == 0.0


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("gankernels_cache"))


def test_digits_metrics_on_real_and_collapsed_samples(cache_dir):
    real = digits_set().data
    classes, kl = digits_coverage_kl(real, cache_dir=cache_dir)
    assert classes == 10 and kl < 0.01
    assert os.path.isfile(os.path.join(cache_dir, "digits_logreg.pt"))
    sevens = real[digits_labels() == 7]
    classes, kl = digits_coverage_kl(sevens, cache_dir=cache_dir)
    assert classes == 1
    # one class against a near-uniform label histogram: KL = log(1 / q_7) ~ log 10
    q7 = float((digits_labels() == 7).double().mean())
    assert kl == pytest.approx(-math.log(q7), rel=0.05)


def test_evaluate_samples_picks_the_metrics_of_the_set(cache_dir):
    ds = toy_set("ring8", n=600, seed=0)
    m = evaluate_samples(ds.data[300:], ds, ds.data[:300], max_pairs=300)
    assert m["modes"] == 8 and m["n_modes"] == 8 and m["hq"] > 95
    assert set(m) >= {"mmd2", "swd", "precision", "recall"}
    assert "modes 8/8" in format_metrics(m)
    digits = digits_set()
    m = evaluate_samples(digits.data[:300], digits, cache_dir=cache_dir)
    assert m["classes"] == 10 and "modes" not in m
    with pytest.raises(ValueError, match="NaN or Inf"):
        evaluate_samples(torch.full((20, 2), float("nan")), ds)
