"""pytest configuration of the benchmark suite: `pytest bench/` from the repository root.

- The device is the GPU when one is visible (the full size set), else the CPU with a small set
  that finishes in a few minutes on 2 cores. GANKERNELS_BENCH_DEVICE=cpu|cuda forces it.
- Quick smoke mode for CI (`--quick` or GANKERNELS_BENCH_QUICK=1): smallest sizes, float32,
  one timed round of every benchmark.
- pytest-benchmark's per-group tables are replaced by one table at the end (bench/_report.py);
  `--benchmark-json PATH` saves every number with its coordinates for bench/plot.py and
  bench/summarize.py.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Optional

import pytest
import torch

from bench import _cases, _measure, _report
from gankernels._extension import STATUS

_DEVICE = _cases.bench_device()


def pytest_addoption(parser) -> None:
    group = parser.getgroup("gankernels-bench")
    group.addoption(
        "--quick",
        action="store_true",
        default=False,
        help="smoke mode: smallest sizes, float32, one round of every benchmark",
    )
    group.addoption(
        "--bench-budget",
        type=float,
        default=None,
        help="seconds of timed rounds per benchmark (default 0.4 on CPU, 1 on GPU)",
    )
    group.addoption(
        "--benchmark-tables",
        action="store_true",
        default=False,
        help="also print pytest-benchmark's own per-group tables",
    )


def pytest_configure(config) -> None:
    # One graph per (op, size, dtype, kind): many more than dynamo's default of 8 recompiles of
    # the reference's code objects, and hitting the limit must fail, never fall back to eager.
    import torch._dynamo.config as dynamo_config

    dynamo_config.recompile_limit = 256
    dynamo_config.accumulated_recompile_limit = 4096
    dynamo_config.fail_on_recompile_limit_hit = True


def pytest_sessionstart(session) -> None:
    bs = getattr(session.config, "_benchmarksession", None)
    if bs is not None and not session.config.getoption("--benchmark-tables"):
        bs.quiet = True  # our one table replaces its per-group ones (display() only)


def pytest_benchmark_update_machine_info(config, machine_info) -> None:
    machine_info["gankernels"] = _measure.machine_summary(config)


def pytest_report_header(config) -> list[str]:
    quick = _cases.quick_mode(config)
    return [
        f"gankernels bench: device={_DEVICE} set={_cases.size_set(_DEVICE, quick)} "
        f"fused={_cases.fused_backends(_DEVICE)} _C loaded={STATUS.loaded} "
        f"threads={torch.get_num_threads()} torch={torch.__version__}"
    ]


@pytest.fixture(scope="session")
def device() -> str:
    return _DEVICE


@pytest.fixture(scope="session")
def quick(pytestconfig) -> bool:
    return _cases.quick_mode(pytestconfig)


@pytest.fixture(scope="session")
def budget(pytestconfig) -> float:
    value = pytestconfig.getoption("--bench-budget")
    if value is None:
        value = float(os.environ.get("GANKERNELS_BENCH_BUDGET", "0") or 0) or (
            1.0 if _DEVICE == "cuda" else 0.4
        )
    return value


@pytest.fixture
def measure(benchmark, device, quick, budget) -> Callable[..., None]:
    """measure(fn, op=, size=, dtype=, impl=, role=, saved_bytes=, peak_bytes=) times `fn` in
    the (op, size, dtype) group and records its coordinates for the table and the JSON."""

    def run(
        fn: Callable[[], None],
        *,
        op: str,
        size: str,
        dtype: str,
        impl: str,
        role: str = "",
        saved_bytes: Optional[int] = None,
        peak_bytes: Optional[int] = None,
        extra: Optional[dict[str, Any]] = None,
        warmed: bool = False,
    ) -> None:
        benchmark.group = f"{op} | {size} | {dtype}"
        benchmark.extra_info.update(
            op=op,
            size=size,
            dtype=dtype,
            impl=impl,
            role=role,
            device=device,
            saved_bytes=saved_bytes,
            peak_bytes=peak_bytes,
            quick=quick,
            **(extra or {}),
        )
        if not warmed:
            fn()  # warm-up: compiles (torch.compile), allocates caches and optimiser state
        once = 0.0
        if not quick:  # quick mode times one round whatever a call costs
            start = time.perf_counter()
            fn()
            once = time.perf_counter() - start
        rounds, iterations = _measure.rounds_for(once, budget, quick)
        # One untimed round settles caches after the estimate; a step is already settled.
        warmup = 0 if quick or warmed else 1
        benchmark.pedantic(fn, rounds=rounds, iterations=iterations, warmup_rounds=warmup)

    return run


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    bs = getattr(config, "_benchmarksession", None)
    if bs is None or not bs.benchmarks:
        return
    rows = _report.rows_from_session(bs.benchmarks)
    if not rows:
        return
    tr = terminalreporter
    quick = _cases.quick_mode(config)
    tr.section(f"gankernels benchmarks on {_DEVICE} ({'quick smoke run' if quick else 'medians'})")
    peak_missing = "needs a GPU" if _DEVICE == "cpu" else "-"
    tr.write_line(_report.text_table(rows, peak_missing))
    tr.write_line("")
    tr.write_line(_report.NOTES)
    if _DEVICE == "cpu" and not quick:
        fused = _cases.fused_backends("cpu")
        if fused:
            tr.write_line("")
            tr.write_line(f"issue 9 CPU targets ({fused[0]} kernels):")
            for target in _report.cpu_targets(rows, fused[0]):
                tr.write_line(target.line())
