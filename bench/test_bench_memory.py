"""Memory claims of issue 9, fused against eager (the numbers are also in the table):

- each fused op keeps no full-size tensor alive for the backward beyond what the eager
  reference keeps (bytes saved by autograd, measured with saved_tensors_hooks on any device);
- the gankernels WGAN-GP critic step peaks no higher than the textbook eager one
  (torch.cuda.max_memory_allocated: needs a GPU; on the CPU the saved bytes are compared).
"""

from __future__ import annotations

from typing import Optional

import pytest

from bench import _cases, _measure, _ops, _steps

DEVICE = _cases.bench_device()
FUSED = _cases.fused_backends(DEVICE)
# Allocator rounding and a few per-sample vectors; far below any full-size tensor.
PEAK_SLACK = 64 * 1024


def pytest_generate_tests(metafunc) -> None:
    sset = _cases.size_set(DEVICE, _cases.quick_mode(metafunc.config))
    if "group" in metafunc.fixturenames:
        params = [(g, i) for g in _cases.op_groups(metafunc.config) for i in FUSED]
        metafunc.parametrize(
            "group,impl", params, ids=[f"{_cases.group_id(g)}-{i}" for g, i in params]
        )
    if "gp_step" in metafunc.fixturenames:
        params = [(s, i) for s in _cases.GP_STEPS[sset] for i in FUSED]
        metafunc.parametrize("gp_step,impl", params, ids=[f"{m}-B{b}-{i}" for (m, b), i in params])


def test_op_keeps_no_extra_full_size_tensor(group, impl) -> None:
    op, kind, shape, dtype = group
    case = _cases.op_case(op, DEVICE, dtype, shape, kind)
    eager = _measure.saved_bytes(_ops.op_fwd_bwd(case, "eager", DEVICE), exclude=case.inputs)
    fused = _measure.saved_bytes(_ops.op_fwd_bwd(case, impl, DEVICE), exclude=case.inputs)
    full = max(t.numel() * t.element_size() for t in case.inputs)
    assert fused - eager < full, (
        f"{_cases.group_id(group)}: {impl} saves {fused} B for the backward, eager {eager} B: "
        f"at least one full-size tensor ({full} B) more"
    )


def _step_memory(impl: str, model: str, batch: int) -> tuple[int, Optional[int], int]:
    step = _steps.wgan_gp_step(impl, model, batch, DEVICE)
    step.run()  # optimiser state and allocator caches first, as in training
    saved = _measure.saved_bytes(step.run, exclude=step.persistent)
    peak = _measure.peak_bytes(step.run, DEVICE)
    batch_bytes = step.persistent[-1].numel() * step.persistent[-1].element_size()
    return saved, peak, batch_bytes


def test_gp_step_peak_memory(gp_step, impl) -> None:
    if DEVICE != "cuda":
        pytest.skip(
            "peak memory of a critic step needs a GPU (torch.cuda.max_memory_allocated); "
            "on the CPU test_gp_step_saved_memory compares saved bytes instead"
        )
    model, batch = gp_step
    _, eager_peak, _ = _step_memory("textbook", model, batch)
    _, fused_peak, _ = _step_memory(f"gankernels-{impl}", model, batch)
    assert fused_peak <= eager_peak + PEAK_SLACK, (
        f"{model} B={batch}: gankernels-{impl} step peaks at {fused_peak} B, "
        f"textbook eager at {eager_peak} B"
    )


def test_gp_step_saved_memory(gp_step, impl) -> None:
    model, batch = gp_step
    eager_saved, _, batch_bytes = _step_memory("textbook", model, batch)
    fused_saved, _, _ = _step_memory(f"gankernels-{impl}", model, batch)
    assert fused_saved - eager_saved < batch_bytes, (
        f"{model} B={batch}: gankernels-{impl} step saves {fused_saved} B for the backward, "
        f"textbook eager {eager_saved} B: at least a batch-sized tensor ({batch_bytes} B) more"
    )
