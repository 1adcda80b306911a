"""scripts/system_quality.py: the summary over seeds, the goal and --check (with tiny runs)."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

import pytest

from gankernels.train.data import BUILTIN_SETS

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location(
        "system_quality", ROOT / "scripts" / "system_quality.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(seconds=10.0, **metrics):
    return {"metrics": metrics, "seconds": seconds}


def test_the_goal_is_judged_on_the_worst_seed(quality):
    row = quality.summarise(
        "cgan",
        [run(label_accuracy=95.0), run(label_accuracy=91.0, seconds=30.0), run(label_accuracy=99)],
    )
    (bound,) = row["values"]
    assert row["met"] and row["values"][bound] == (91.0, 95.0) and row["seconds"] == 30.0
    assert not quality.summarise("acgan", [run(label_accuracy=95.0), run(label_accuracy=89.9)])[
        "met"
    ]
    diverged = {"diverged": "loss is NaN", "metrics": {}, "seconds": None}
    row = quality.summarise("cgan", [run(label_accuracy=95.0), diverged])
    assert not row["met"] and row["diverged"] == 1
    text = quality.format_table([("cgan", row)], "header")
    assert "| cgan | digits | label_accuracy >= 90 | -inf / " in text
    assert "- (1 diverged) |" in text


def test_an_upper_bound_takes_the_largest_value_as_the_worst(quality):
    good = dict(recon_accuracy=95.0, latent_mmd2=0.01)
    row = quality.summarise("aae", [run(**good), run(recon_accuracy=96.0, latent_mmd2=0.04)])
    assert row["met"]
    latent = [b for b in row["values"] if b.metric == "latent_mmd2"][0]
    assert latent.at_most and row["values"][latent][0] == 0.04
    far = dict(recon_accuracy=99.0, latent_mmd2=latent.value * 2)
    assert not quality.summarise("aae", [run(**good), run(**far)])["met"]
    assert not quality.summarise("aae", [run(recon_accuracy=99.0)])["met"]  # metric missing


def test_every_goal_names_a_registered_system(quality):
    from gankernels import variants

    for name, goal in quality.GOALS.items():
        assert isinstance(variants.get(name), variants.System), name
        assert goal.data in BUILTIN_SETS, name


def test_check_writes_the_table_and_fails_a_missed_goal(tmp_path):
    out = tmp_path / "t.md"
    cmd = [sys.executable, str(ROOT / "scripts" / "system_quality.py"), "--systems", "acgan"]
    cmd += ["--seeds", "0", "--steps", "2", "--no-plots"]
    cmd += ["--out-dir", str(tmp_path), "--output", str(out), "--check"]
    checked = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert checked.returncode == 1, checked.stderr  # 2 steps draw no digits
    assert "goal missed: acgan" in checked.stderr
    text = out.read_text()  # written before the check
    assert "| acgan | digits | label_accuracy >= 90 |" in text
    assert "Seed 0, 2 generator steps" in text
