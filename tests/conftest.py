"""Backend selection for the tests.

A test names the backend it exercises ("cpu", "cuda", "triton", "ref") through
`device_for(backend)`. The compiled CPU kernels must be there: a missing `_C` fails those tests,
never skips them. Only a missing GPU skips, and says so. Without a GPU, Triton runs on the CPU
through its interpreter (TRITON_INTERPRET=1, set before triton is first imported).
"""

from __future__ import annotations

import os

import pytest
import torch

HAS_GPU = torch.cuda.is_available()
# Subprocesses started from the repository root must import the installed gankernels (with its
# compiled _C), not the source tree that `python -c` / `python -m` would put first on sys.path.
os.environ["PYTHONSAFEPATH"] = "1"
if not HAS_GPU:
    os.environ.setdefault("TRITON_INTERPRET", "1")

from gankernels._extension import STATUS  # noqa: E402

BACKENDS = ("cpu", "cuda", "triton")


def require_extension() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("GANKERNELS_REQUIRE_C") == "1"


def pytest_sessionstart(session) -> None:
    if require_extension() and not STATUS.loaded:
        pytest.exit(
            f"gankernels._C did not load (CI=true or GANKERNELS_REQUIRE_C=1): {STATUS.error}",
            returncode=1,
        )


def pytest_report_header(config) -> list[str]:
    return [
        f"gankernels: _C loaded={STATUS.loaded} cuda_kernels={STATUS.with_cuda} "
        f"gpu={HAS_GPU} triton_interpret={os.environ.get('TRITON_INTERPRET')}"
    ]


def device_for(backend: str) -> str:
    """The device a backend's test runs on; skips only for a missing GPU, fails otherwise."""
    if backend == "cuda":
        if not HAS_GPU:
            pytest.skip("no CUDA GPU on this machine: the CUDA kernels are compiled, not run")
        if not STATUS.with_cuda:
            pytest.fail(f"a GPU is present but the CUDA kernels are not loaded: {STATUS.error}")
        return "cuda"
    if backend == "cpu":
        if not STATUS.loaded:
            pytest.fail(
                f"gankernels._C is not loaded, so the CPU kernels cannot be tested: {STATUS.error}"
            )
        return "cpu"
    if backend == "triton":
        return "cuda" if HAS_GPU else "cpu"
    return "cuda" if HAS_GPU else "cpu"


@pytest.fixture(scope="module")
def one_thread():
    """For modules of small tensors: intra-op threads waiting on each other cost far more than
    the work itself."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def device(backend) -> str:
    return device_for(backend)
