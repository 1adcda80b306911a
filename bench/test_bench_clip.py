"""clip_ on real critics' parameter lists (DCGAN-64, the 3x512 MLP, 100 small tensors) against
the per-parameter `p.clamp_` loop (the baseline, as the WGAN reference code writes it), the
`torch._foreach_clamp_min_` + `_foreach_clamp_max_` pair, the reference (which also counts
the saturated elements, as the fused op does), and the copy floor of the same bytes.

torch.compile of the loop is measured on a GPU only: on the CPU inductor takes about a minute
to compile the 100-tensor list and the compiled loop measured slower than the eager one.
"""

from __future__ import annotations

import functools

import torch

import gankernels.ops
from bench import _cases, _critics, _measure, _ops

DEVICE = _cases.bench_device()


def impls(config) -> list[str]:
    found = ["loop", "foreach", "eager+count"]
    if _cases.size_set(DEVICE, _cases.quick_mode(config)) == "gpu":
        found.append("compile")
    return [*found, *_cases.fused_backends(DEVICE), "copy"]


def pytest_generate_tests(metafunc) -> None:
    if "clip_group" in metafunc.fixturenames:
        sset = _cases.size_set(DEVICE, _cases.quick_mode(metafunc.config))
        params = [
            ((name, dtype), impl)
            for name in _cases.CLIP_LISTS[sset]
            for dtype in _cases.DTYPES[sset]
            for impl in impls(metafunc.config)
        ]
        ids = [f"{n}-{_cases.dtype_name(d)}-{i}" for (n, d), i in params]
        metafunc.parametrize("clip_group,impl", params, ids=ids)


@functools.lru_cache(maxsize=1)
def params_for(clip_group: tuple) -> list[torch.Tensor]:
    name, dtype = clip_group
    return _critics.clip_params(name, DEVICE, dtype)


def test_clip(measure, clip_group, impl) -> None:
    name, dtype = clip_group
    params = params_for(clip_group)
    nbytes = sum(p.numel() * p.element_size() for p in params)
    if impl == "copy":
        fn = _measure.copy_floor(2 * nbytes, DEVICE, _measure.synchronizer(DEVICE))
    else:
        fn = _ops.clip_fn(impl, params, DEVICE)
    role = {"loop": "baseline", "copy": "floor"}.get(impl, "")
    measure(
        fn,
        op="clip_",
        size=_critics.clip_label(name, params),
        dtype=_cases.dtype_name(dtype),
        impl=impl,
        role=role,
        peak_bytes=None if impl == "copy" else _measure.peak_bytes(fn, DEVICE),
        extra={"bytes_moved": 2 * nbytes},
    )


def test_clip_matches_loop() -> None:
    """Every timed clip gives the loop's result (guards against timing a path that does not
    clip), and the fused count is the number of elements at +-c."""
    for impl in impls(None):
        if impl == "copy":
            continue
        got = _critics.clip_params("small100", DEVICE, torch.float32)
        want = _critics.clip_params("small100", DEVICE, torch.float32)
        _ops.clip_fn(impl, got, DEVICE)()
        _ops.clip_fn("loop", want, DEVICE)()
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=0, atol=0, msg=lambda m, i=impl: f"{i}: {m}")
        if impl not in ("loop", "foreach", "compile"):
            backend = "ref" if impl == "eager+count" else impl
            count = gankernels.ops.clip_(got, _cases.CLIP_C, impl=backend)
            expected = sum(int((w.abs() == _cases.CLIP_C).sum()) for w in want)
            assert int(count) == expected, f"{impl}: count {int(count)} != {expected}"
