"""mmd2 forward+backward (both batches' gradients) against the eager formulation MMD-GAN's code
and most repositories use: torch.cdist for the distances, exp per bandwidth on the B x B'
matrices, then the three means. Its torch.compile, every fused backend of the device, and the
peak memory of each: the eager form holds several B x B' matrices, the fused kernels none.

torch.compile is measured on the CPU at B = 1024 only: inductor takes tens of seconds per shape
on 2 cores, and the suite must stay under 5 minutes there.
"""

from __future__ import annotations

import functools

import pytest
import torch

import gankernels
from bench import _cases, _measure
from gankernels.ops.mmd2 import DEFAULT_SIGMAS

DEVICE = _cases.bench_device()
SIGMAS = list(DEFAULT_SIGMAS)


def eager_mmd2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The unbiased MMD^2 as it is usually written: cdist, exp per bandwidth, three means."""
    n, m = x.shape[0], y.shape[0]
    total = x.new_zeros(())
    for a, b, weight, diagonal in (
        (x, x, 1.0 / (n * (n - 1)), n),
        (y, y, 1.0 / (m * (m - 1)), m),
        (x, y, -2.0 / (n * m), 0),
    ):
        d2 = torch.cdist(a, b).square()
        k = sum(torch.exp(d2 * (-0.5 / (s * s))) for s in SIGMAS)
        total = total + weight * (k.sum() - diagonal * len(SIGMAS))
    return total


@functools.cache
def compiled_eager():
    return torch.compile(eager_mmd2, dynamic=False, fullgraph=True)


def impls(size, sset: str) -> list[str]:
    compile_here = sset != "cpu" or size[0] == 1024
    return ["eager", *(["compile"] if compile_here else []), *_cases.fused_backends(DEVICE)]


def pytest_generate_tests(metafunc) -> None:
    if "mmd_size" in metafunc.fixturenames:
        sset = _cases.size_set(DEVICE, _cases.quick_mode(metafunc.config))
        params = [(s, i) for s in _cases.MMD_SIZES[sset] for i in impls(s, sset)]
        ids = [f"B{b}-D{d}-{i}" for (b, d), i in params]
        metafunc.parametrize("mmd_size,impl", params, ids=ids)


@functools.lru_cache(maxsize=1)
def batches(size: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of norm about 1 (every bandwidth sees near and far pairs), y shifted a little."""
    b, d = size
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(b, d, generator=gen) / d**0.5
    y = torch.randn(b, d, generator=gen) / d**0.5 + 0.1
    return x.to(DEVICE).requires_grad_(), y.to(DEVICE).requires_grad_()


def forward(impl: str):
    if impl == "eager":
        return eager_mmd2
    if impl == "compile":
        return compiled_eager()
    return functools.partial(gankernels.mmd2, sigmas=SIGMAS, impl=impl)


def fwd_bwd(impl: str, x: torch.Tensor, y: torch.Tensor):
    sync = _measure.synchronizer(DEVICE)
    f = forward(impl)

    def run() -> None:
        torch.autograd.grad(f(x, y), [x, y])
        sync()

    return run


def test_mmd2(measure, mmd_size, impl) -> None:
    x, y = batches(mmd_size)
    fn = fwd_bwd(impl, x, y)
    fn()  # compiles (torch.compile) before the memory is read
    peak = _measure.cpu_peak_bytes(fn) if DEVICE == "cpu" else _measure.peak_bytes(fn, DEVICE)
    measure(
        fn,
        op="mmd2",
        size=f"B={mmd_size[0]},D={mmd_size[1]}",
        dtype="float32",
        impl=impl,
        role="baseline" if impl == "eager" else "",
        peak_bytes=peak,
        warmed=True,
    )


@pytest.mark.parametrize("impl", ["compile", *_cases.fused_backends(DEVICE)])
def test_mmd2_matches_eager(impl) -> None:
    """What is timed computes the same value and gradients as the eager formulation."""
    gen = torch.Generator().manual_seed(1)
    x = (torch.randn(70, 5, generator=gen) / 2).to(DEVICE).requires_grad_()
    y = (torch.randn(90, 5, generator=gen) / 2 + 0.2).to(DEVICE).requires_grad_()
    want = eager_mmd2(x.double(), y.double())
    want_grads = torch.autograd.grad(want, [x, y])
    got = forward(impl)(x, y)
    got_grads = torch.autograd.grad(got, [x, y])
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-6)
    for g, w in zip(got_grads, want_grads):
        torch.testing.assert_close(g, w.float(), rtol=1e-3, atol=1e-6)
