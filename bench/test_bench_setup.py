"""The suite measures every fused backend that should be on this device: a missing one is a
failure here, not a silently shorter table."""

from __future__ import annotations

from bench import _cases
from gankernels._extension import STATUS

DEVICE = _cases.bench_device()


def test_fused_backends_present() -> None:
    fused = _cases.fused_backends(DEVICE)
    assert STATUS.loaded, f"gankernels._C did not load, nothing fused to measure: {STATUS.error}"
    if DEVICE == "cpu":
        assert fused == ["cpu"], f"expected the compiled CPU kernels to be measured, got {fused}"
    else:
        assert STATUS.with_cuda, "a GPU is present but gankernels._C has no CUDA kernels"
        assert "cuda" in fused and "triton" in fused, (
            f"expected the CUDA and Triton kernels to be measured on the GPU, got {fused}"
        )
