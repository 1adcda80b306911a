"""ema_ (the generator's moving average) on real parameter lists (DCGAN-64, the 3x512 MLP, 100
small tensors: the lists the clip_ bench uses) against the per-parameter `lerp_` loop (the
baseline, as GAN trainers write it), `torch._foreach_lerp_`, and the copy floor of the same bytes
(read both lists, write the target).
"""

from __future__ import annotations

import functools

import torch

from bench import _cases, _critics, _measure, _ops

DEVICE = _cases.bench_device()


def impls() -> list[str]:
    return ["loop", "foreach", *_cases.fused_backends(DEVICE), "copy"]


def pytest_generate_tests(metafunc) -> None:
    if "ema_group" in metafunc.fixturenames:
        sset = _cases.size_set(DEVICE, _cases.quick_mode(metafunc.config))
        params = [
            ((name, dtype), impl)
            for name in _cases.CLIP_LISTS[sset]
            for dtype in _cases.DTYPES[sset]
            for impl in impls()
        ]
        ids = [f"{n}-{_cases.dtype_name(d)}-{i}" for (n, d), i in params]
        metafunc.parametrize("ema_group,impl", params, ids=ids)


@functools.lru_cache(maxsize=1)
def lists_for(ema_group: tuple) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    name, dtype = ema_group
    return _critics.clip_params(name, DEVICE, dtype), _critics.clip_params(name, DEVICE, dtype)


def test_ema(measure, ema_group, impl) -> None:
    name, dtype = ema_group
    target, source = lists_for(ema_group)
    nbytes = sum(p.numel() * p.element_size() for p in target)
    if impl == "copy":
        fn = _measure.copy_floor(3 * nbytes, DEVICE, _measure.synchronizer(DEVICE))
    else:
        fn = _ops.ema_fn(impl, target, source, DEVICE)
    role = {"loop": "baseline", "copy": "floor"}.get(impl, "")
    measure(
        fn,
        op="ema_",
        size=_critics.clip_label(name, target),
        dtype=_cases.dtype_name(dtype),
        impl=impl,
        role=role,
        peak_bytes=None if impl == "copy" else _measure.peak_bytes(fn, DEVICE),
        extra={"bytes_moved": 3 * nbytes},
    )


def test_ema_matches_loop() -> None:
    """Every timed update gives the loop's result (within one rounding: lerp_ is the formula the
    fused kernels compute), so no timed path skips the work."""
    for impl in impls():
        if impl == "copy":
            continue
        got = _critics.clip_params("small100", DEVICE, torch.float32)
        want = _critics.clip_params("small100", DEVICE, torch.float32)
        source = [p * 0.5 + 0.1 for p in want]
        _ops.ema_fn(impl, got, source, DEVICE)()
        _ops.ema_fn("loop", want, source, DEVICE)()
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, msg=lambda m, i=impl: f"{i}: {m}")
