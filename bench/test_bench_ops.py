"""Forward+backward of each differentiable op: eager reference (the baseline), torch.compile of
the reference, every fused backend of the device, and the copy floor of the same bytes.

Groups are (op, size, dtype): interpolation and norm penalty on images, the critic loss of
minimax, wasserstein, hinge and KL on critic outputs.
"""

from __future__ import annotations

import functools

import pytest
import torch

from bench import _cases, _measure, _ops

DEVICE = _cases.bench_device()
groups, group_id, op_label = _cases.op_groups, _cases.group_id, _cases.op_label


def impls(group: tuple, sset: str) -> list[str]:
    """eager, compile, the fused backends and the copy floor. On the CPU set the losses are
    compiled in float32 only: each graph costs seconds of inductor time on 2 cores, and the
    suite must stay under 5 minutes there."""
    op, _, _, dtype = group
    skip_compile = sset == "cpu" and op == "adversarial_loss" and dtype != torch.float32
    return ["eager", *([] if skip_compile else ["compile"]), *_cases.fused_backends(DEVICE), "copy"]


def pytest_generate_tests(metafunc) -> None:
    if "group" in metafunc.fixturenames:
        sset = _cases.size_set(DEVICE, _cases.quick_mode(metafunc.config))
        params = [(g, i) for g in groups(metafunc.config) for i in impls(g, sset)]
        ids = [f"{group_id(g)}-{i}" for g, i in params]
        metafunc.parametrize("group,impl", params, ids=ids)


@functools.lru_cache(maxsize=1)
def case_for(group: tuple) -> _cases.OpCase:
    """The group's inputs, built once and shared by all its implementations (cases run in
    group order, so one cached group is enough)."""
    op, kind, shape, dtype = group
    return _cases.op_case(op, DEVICE, dtype, shape, kind)


def test_op(measure, group, impl) -> None:
    op, kind, shape, dtype = group
    case = case_for(group)
    fn = _ops.op_fwd_bwd(case, impl, DEVICE)
    role = {"eager": "baseline", "copy": "floor"}.get(impl, "")
    saved = peak = None
    if impl != "copy":
        saved = _measure.saved_bytes(fn, exclude=case.inputs)
        peak = _measure.peak_bytes(fn, DEVICE)
    measure(
        fn,
        op=op_label(op, kind),
        size=_cases.shape_name(shape),
        dtype=_cases.dtype_name(dtype),
        impl=impl,
        role=role,
        saved_bytes=saved,
        peak_bytes=peak,
        extra={"bytes_moved": case.bytes_moved},
    )


@pytest.mark.parametrize("impl", ["compile", *_cases.fused_backends(DEVICE)])
def test_matches_eager(impl) -> None:
    """What is timed computes the same thing: each contender's gradients equal the eager ones
    on the first group of every op (a guard against timing a wrong or empty path)."""
    from gankernels import testing

    seen = set()
    for group in groups(None):
        op, kind, shape, dtype = group
        if (op, kind) in seen:
            continue
        seen.add((op, kind))
        case = _cases.op_case(op, DEVICE, dtype, shape, kind)
        got, want = [], []
        for name, sink in ((impl, got), ("eager", want)):
            forward = _ops.forward_of(op, name)
            out = forward(*case.args)
            out = out[0] if isinstance(out, tuple) else out
            sink.append(out.detach())
            sink.extend(torch.autograd.grad(out, case.grad_inputs, case.grad_out))
        rtol, atol = testing.tolerance(dtype)
        for g, w in zip(got, want):
            torch.testing.assert_close(
                g, w, rtol=rtol, atol=atol, msg=lambda m, g=group: f"{group_id(g)} {impl}: {m}"
            )
