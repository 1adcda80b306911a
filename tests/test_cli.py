"""The `gankernels train | sample | evaluate` command line, run in process on tiny budgets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from gankernels.__main__ import main
from gankernels.train.data import load_data
from gankernels.train.metrics import digits_coverage_kl, modes_and_quality

TINY = [
    "--steps",
    "4",
    "--batch-size",
    "16",
    "--hidden",
    "16",
    "--depth",
    "1",
    "--n-eval",
    "100",
    "--log-every",
    "2",
    "--eval-every",
    "4",
]


@pytest.fixture(autouse=True)
def one_thread(monkeypatch, tmp_path_factory):
    # the digits classifier is cached here, not in the user's home
    monkeypatch.setenv("GANKERNELS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> str:
    """A ring8 run with the fused kernels (impl auto), progress bar and plots on."""
    out = str(tmp_path_factory.mktemp("run") / "wgan-gp-ring8")
    rc = main(["train", "--variant", "wgan-gp", "--data", "ring8", "--out", out, *TINY])
    assert rc == 0
    return out


def test_train_writes_everything(trained):
    for name in ("checkpoint.pt", "metrics.jsonl", "summary.json", "samples.png", "curves.png"):
        assert os.path.isfile(os.path.join(trained, name)), name
    with open(os.path.join(trained, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == [2, 4]  # --log-every 2
    assert all({"loss_critic", "loss_generator", "grad_norm", "time"} <= set(r) for r in train)
    evals = [r for r in records if r["kind"] == "eval"]
    assert evals[-1]["step"] == 4 and {"modes", "hq", "mmd2", "precision", "recall"} <= set(
        evals[-1]
    )
    with open(os.path.join(trained, "summary.json")) as f:
        summary = json.load(f)
    assert summary["variant"] == "wgan-gp" and summary["steps"] == 4
    assert summary["critic_steps"] == 20 and summary["impl"] == "auto -> cpu"


def test_train_prints_progress_and_summary(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert (
        main(["train", "--variant", "nsgan", "--data", "grid25", "--out", out, *TINY, "--no-plots"])
        == 0
    )
    captured = capsys.readouterr()
    assert "modes captured" in captured.out and "MMD^2" in captured.out
    assert "nsgan grid25" in captured.err and "D=" in captured.err  # the tqdm bar
    assert not os.path.exists(os.path.join(out, "samples.png"))


def test_sample_pt_and_npy(trained, tmp_path, capsys):
    ckpt = os.path.join(trained, "checkpoint.pt")
    assert main(["sample", "--checkpoint", ckpt, "--n", "37", "--out", str(tmp_path / "s.pt")]) == 0
    samples = torch.load(str(tmp_path / "s.pt"), weights_only=True)
    assert samples.shape == (37, 2) and torch.isfinite(samples).all()
    assert (
        main(["sample", "--checkpoint", trained, "--n", "37", "--out", str(tmp_path / "s.npy")])
        == 0
    )
    np.testing.assert_array_equal(np.load(str(tmp_path / "s.npy")), samples.numpy())
    assert "wrote 37 samples" in capsys.readouterr().out
    assert main(["sample", "--checkpoint", ckpt, "--n", "5", "--out", "x.txt"]) == 2
    assert "--out must end in .pt or .npy" in capsys.readouterr().err


def test_evaluate_prints_metrics(trained, capsys, tmp_path):
    ckpt = os.path.join(trained, "checkpoint.pt")
    assert main(["evaluate", "--checkpoint", ckpt, "--n", "200"]) == 0
    text = capsys.readouterr().out
    assert "wgan-gp on ring8, step 4" in text and "modes " in text and "mmd2" in text
    assert main(["evaluate", "--checkpoint", ckpt, "--n", "200", "--data", "grid25", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    # --data changes the reference set the samples are measured against: grid25's 25 modes.
    # The same 200 samples (sample's --seed defaults to evaluate's) measured directly against
    # grid25's centres give the same modes and HQ.
    assert metrics["n_modes"] == 25
    samples_path = str(tmp_path / "samples.pt")
    assert main(["sample", "--checkpoint", ckpt, "--n", "200", "--out", samples_path]) == 0
    capsys.readouterr()
    grid = load_data("grid25", seed=0)
    modes, hq = modes_and_quality(
        torch.load(samples_path, weights_only=True), grid.centres, grid.std
    )
    assert (metrics["modes"], metrics["hq"]) == (modes, pytest.approx(hq, abs=1e-9)), metrics
    assert main(["evaluate", "--checkpoint", ckpt, "--data", "digits"]) == 2
    assert "has samples of shape [1, 8, 8]" in capsys.readouterr().err


def test_resume_via_cli(trained, tmp_path, capsys):
    out = str(tmp_path / "copy")
    shutil.copytree(trained, out)
    assert main(["train", "--out", out, "--steps", "6", "--no-progress", "--no-plots"]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--out",
                out,
                "--steps",
                "6",
                "--resume",
                "--no-progress",
                "--no-plots",
                "--n-eval",
                "100",
            ]
        )
        == 0
    )
    assert torch.load(os.path.join(out, "checkpoint.pt"), weights_only=True)["step"] == 6


def test_digits_image_grid(tmp_path):
    out = str(tmp_path / "digits")
    assert (
        main(
            [
                "train",
                "--variant",
                "wgan-gp",
                "--data",
                "digits",
                "--out",
                out,
                *TINY,
                "--no-progress",
                "--impl",
                "ref",
            ]
        )
        == 0
    )
    with open(os.path.join(out, "summary.json")) as f:
        metrics = json.load(f)["metrics"]
    # The summary's label metrics are those of the final evaluation's samples (n_eval = 100
    # draws with seed + 12345), recomputed here from the checkpoint's generator.
    samples_path = str(tmp_path / "eval.pt")
    assert (
        main(
            [
                "sample",
                "--checkpoint",
                os.path.join(out, "checkpoint.pt"),
                "--n",
                "100",
                "--seed",
                "12345",
                "--out",
                samples_path,
            ]
        )
        == 0
    )
    classes, kl = digits_coverage_kl(torch.load(samples_path, weights_only=True))
    assert metrics["classes"] == classes >= 1
    assert metrics["label_kl"] == pytest.approx(kl, rel=1e-9, abs=1e-12), metrics
    assert os.path.getsize(os.path.join(out, "samples.png")) > 1000


def test_user_file_and_bad_file(tmp_path, capsys):
    good = str(tmp_path / "points.npy")
    np.save(good, np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32))
    assert (
        main(
            [
                "train",
                "--data",
                good,
                "--out",
                str(tmp_path / "u"),
                *TINY,
                "--no-progress",
                "--impl",
                "ref",
            ]
        )
        == 0
    )
    bad = str(tmp_path / "bad.pt")
    torch.save(torch.zeros(4, 2, 2), bad)
    assert main(["train", "--data", bad, "--out", str(tmp_path / "b"), *TINY]) == 2
    assert "N x D or N x C x H x W, got shape [4, 2, 2]" in capsys.readouterr().err


def test_bad_arguments(tmp_path, capsys):
    assert main(["train", "--variant", "wgan-gpp", "--out", str(tmp_path), *TINY]) == 2
    assert "did you mean 'wgan-gp'" in capsys.readouterr().err
    assert main(["train", "--batch-size", "1", "--out", str(tmp_path), "--steps", "2"]) == 2
    assert "batch_size must be >= 2" in capsys.readouterr().err
    assert main(["train", "--penalty-weight", "-1", "--out", str(tmp_path), "--steps", "2"]) == 2
    assert "penalty_weight must be" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--option", "novalue"])
    assert "--option expects KEY=VALUE" in capsys.readouterr().err


def test_console_script_is_installed():
    exe = shutil.which("gankernels") or os.path.join(os.path.dirname(sys.executable), "gankernels")
    proc = subprocess.run([exe, "train", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--variant" in proc.stdout and "--resume" in proc.stdout
