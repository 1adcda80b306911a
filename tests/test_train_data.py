"""The training data: toy sets exactly as docs/math.md section 7, digits, a user's tensor file."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gankernels.train.data import (
    digits_set,
    grid25_centres,
    load_data,
    reference_sample,
    ring8_centres,
    toy_set,
)
from gankernels.train.metrics import modes_and_quality


def test_ring8_centres_and_spread():
    ds = toy_set("ring8", n=20000, seed=1)
    assert ds.data.shape == (20000, 2) and ds.data.dtype == torch.float32
    expected = (
        torch.tensor(
            [
                [2 * math.cos(2 * math.pi * k / 8), 2 * math.sin(2 * math.pi * k / 8)]
                for k in range(8)
            ]
        )
        / 1.414
    )
    torch.testing.assert_close(ds.centres, expected)
    assert ds.std == pytest.approx(0.02 / 1.414)
    # every sample's offset from its nearest centre has the scaled std per coordinate
    nearest = torch.cdist(ds.data, ds.centres).argmin(1)
    offset = ds.data - ds.centres[nearest]
    assert offset.std(0).tolist() == pytest.approx([0.02 / 1.414] * 2, rel=0.05)
    assert torch.bincount(nearest, minlength=8).min() > 20000 / 8 * 0.9


def test_grid25_centres_and_spread():
    ds = toy_set("grid25", n=25000, seed=2)
    centres = grid25_centres()
    assert centres.shape == (25, 2)
    assert sorted(set((centres[:, 0] * 2.828).round().tolist())) == [-4, -2, 0, 2, 4]
    assert ds.std == pytest.approx(0.05 / 2.828)
    nearest = torch.cdist(ds.data, centres).argmin(1)
    offset = ds.data - centres[nearest]
    assert offset.std(0).tolist() == pytest.approx([0.05 / 2.828] * 2, rel=0.05)


def test_toy_sets_are_seeded():
    assert torch.equal(toy_set("grid25", 100, seed=3).data, toy_set("grid25", 100, seed=3).data)
    assert not torch.equal(toy_set("grid25", 100, seed=3).data, toy_set("grid25", 100, 4).data)


def test_swissroll_matches_sklearn_scaled():
    from sklearn.datasets import make_swiss_roll

    ds = toy_set("swissroll", n=500, seed=5)
    points, _ = make_swiss_roll(n_samples=500, noise=0.25, random_state=5)
    expected = torch.from_numpy(points[:, [0, 2]] / 7.5).float()
    torch.testing.assert_close(ds.data, expected)
    assert ds.centres is None and ds.kind == "points"


def test_digits_scaled_to_unit_range():
    ds = digits_set()
    assert ds.data.shape == (1797, 1, 8, 8) and ds.kind == "images"
    assert float(ds.data.min()) == -1.0 and float(ds.data.max()) == 1.0


def test_reference_sample_is_a_fresh_draw_for_toy_sets():
    ds = toy_set("ring8", n=1000, seed=0)
    ref = reference_sample("ring8", ds, 300, seed=0)
    assert ref.shape == (300, 2) and not torch.equal(ref, ds.data[:300])
    modes, hq = modes_and_quality(ref, ds.centres, ds.std)
    assert modes == 8 and hq > 95


@pytest.mark.parametrize("shape", [(10, 3), (6, 1, 4, 4)])
@pytest.mark.parametrize("suffix", [".pt", ".npy"])
def test_user_file(tmp_path, shape, suffix):
    data = torch.randn(shape)
    path = str(tmp_path / f"mine{suffix}")
    if suffix == ".pt":
        torch.save(data, path)
    else:
        np.save(path, data.numpy())
    ds = load_data(path)
    assert torch.equal(ds.data, data)
    assert ds.kind == ("points" if len(shape) == 2 else "images")
    assert ds.centres is None
    assert ds.shard(1, 2).shape[0] == shape[0] // 2


def test_integer_file_becomes_float(tmp_path):
    path = str(tmp_path / "ints.npy")
    np.save(path, np.arange(12, dtype=np.int64).reshape(6, 2))
    assert load_data(path).data.dtype == torch.float32


@pytest.mark.parametrize(
    "obj, message",
    [
        (torch.randn(5, 2, 3), "N x D or N x C x H x W, got shape [5, 2, 3]"),
        (torch.randn(7), "N x D or N x C x H x W, got shape [7]"),
        ({"x": torch.randn(4, 2)}, "must hold a single tensor"),
        (torch.randn(1, 2), "at least 2 non-empty samples"),
        (torch.tensor([[1.0, float("nan")], [0.0, 1.0]]), "NaN or Inf"),
    ],
)
def test_bad_file_names_the_problem(tmp_path, obj, message):
    path = str(tmp_path / "bad.pt")
    torch.save(obj, path)
    with pytest.raises(ValueError, match="data: ") as info:
        load_data(path)
    assert message in str(info.value)


def test_bad_specs(tmp_path):
    with pytest.raises(ValueError, match="expected one of ring8, grid25, swissroll, digits"):
        load_data("grid26")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_data(str(tmp_path / "missing.pt"))
    np.save(str(tmp_path / "s.npy"), np.array(["a", "b"]))
    with pytest.raises(ValueError, match="numeric array"):
        load_data(str(tmp_path / "s.npy"))


def test_shards_partition_the_data():
    ds = toy_set("ring8", n=101, seed=0)
    shards = [ds.shard(r, 3) for r in range(3)]
    assert sum(s.shape[0] for s in shards) == 101
    assert torch.equal(torch.cat(shards).sort(0).values, ds.data.sort(0).values)


def test_centres_helpers_agree_with_sets():
    assert torch.equal(toy_set("ring8", 10).centres, ring8_centres())
