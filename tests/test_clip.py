"""clip_: the multi-tensor in-place clamp of every fused backend against gankernels.reference.

Chunk edges, many tensors, empty tensors, mixed dtypes, inf/NaN, values exactly at +-c and
non-contiguous parameters, after apex's multi-tensor fuzz tests; opcheck, torch.compile and
bad input by message.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from conftest import BACKENDS, HAS_GPU, device_for
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

import gankernels
from gankernels import reference
from gankernels.ops.registry import backend_op
from gankernels.testing import DTYPES, make, sample_inputs

OP = "clip_"


class OpRecorder(TorchDispatchMode):
    """Records the name of every op that reaches the dispatcher below autograd."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func._schema.name)
        return func(*args, **(kwargs or {}))


def op_name(backend: str) -> str:
    return f"gankernels::{OP}_triton" if backend == "triton" else f"gankernels::{OP}"


def clone_all(params):
    return [p.detach().clone() for p in params]


def check_against_reference(backend: str, params, c: float, label: str = "") -> torch.Tensor:
    """Clips a copy with the backend and a copy with the reference: same values (bit for bit:
    a clamp only selects values, NaN included), same count, and the backend's op ran."""
    ours, theirs = clone_all(params), clone_all(params)
    with OpRecorder() as rec:
        count = gankernels.clip_(ours, c, impl=backend)
    assert op_name(backend) in rec.names, f"{label}: {op_name(backend)} did not run: {rec.names}"
    want = reference.clip_(theirs, c)
    assert count.dtype == torch.int64 and count.dim() == 0, count
    assert count.device == params[0].device
    assert int(count) == int(want), f"{label}: count {int(count)} != reference {int(want)}"
    for i, (o, t) in enumerate(zip(ours, theirs)):
        assert o.dtype == t.dtype
        torch.testing.assert_close(
            o, t, rtol=0, atol=0, equal_nan=True, msg=lambda m, i=i: f"{label} params[{i}]: {m}"
        )
    return count


def randn(n: int, dtype: torch.dtype, device, seed: int, scale: float = 0.02) -> torch.Tensor:
    return make((n,), dtype, device, seed=seed, scale=scale)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_sample_inputs_match_reference(backend, dtype):
    device = device_for(backend)
    for label, (params, c), _ in sample_inputs(OP, device, dtype):
        check_against_reference(backend, params, c, label)


CHUNK_EDGE_SIZES = (
    1,
    2,
    3,
    7,
    15,
    16,
    17,
    31,
    32,
    33,
    255,
    256,
    257,
    1023,
    1024,
    1025,
    4095,
    4096,
    4097,
    2**16 - 1,
    2**16,
    2**16 + 1,
    2**17 + 3,
)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_chunk_edges(backend, dtype):
    """Every size around powers of two and 2^16, alone and all together in one list (so
    tensors start at every offset of a chunk)."""
    device = device_for(backend)
    for i, n in enumerate(CHUNK_EDGE_SIZES):
        check_against_reference(backend, [randn(n, dtype, device, seed=i)], 0.01, f"n={n}")
    together = [randn(n, dtype, device, seed=100 + i) for i, n in enumerate(CHUNK_EDGE_SIZES)]
    check_against_reference(backend, together, 0.01, "together")


def test_many_tensors(backend):
    """1000 small tensors of odd sizes in one call, with empty tensors among them."""
    device = device_for(backend)
    params = [randn(1 + (i * 37) % 97, torch.float32, device, seed=i) for i in range(1000)]
    params[5] = params[5][:0]
    params[500] = torch.empty(0, 3, device=device)
    count = check_against_reference(backend, params, 0.01, "1000 tensors")
    assert int(count) > 0


def test_empty_tensors_are_skipped(backend):
    device = device_for(backend)
    empty = torch.empty(0, device=device)
    assert int(gankernels.clip_([empty], 0.5, impl=backend)) == 0
    params = [empty, torch.tensor([2.0, -0.1], device=device), torch.empty(3, 0, device=device)]
    assert int(check_against_reference(backend, params, 0.5)) == 1


def test_mixed_dtypes_in_one_list(backend):
    device = device_for(backend)
    params = [
        randn(n, dtype, device, seed=i)
        for i, (n, dtype) in enumerate(
            [
                (1000, torch.float16),
                (333, torch.bfloat16),
                (70001, torch.float32),
                (17, torch.float64),
                (4097, torch.float16),
                (5, torch.bfloat16),
            ]
        )
    ]
    check_against_reference(backend, params, 0.01, "mixed")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_inf_nan_and_values_at_the_bound(backend, dtype):
    """inf -> +-c, NaN stays NaN (as torch.clamp) and is not counted, +-c and the values just
    inside and outside it in the tensor's dtype behave exactly as the reference."""
    device = device_for(backend)
    c = 0.01
    rc = torch.tensor(c, dtype=dtype)
    above = torch.nextafter(rc.float(), torch.tensor(1.0)).to(dtype)
    if above == rc:  # the half types: step by one unit in the last place
        above = (rc.view(torch.int16) + 1).view(dtype)
    below = (
        (rc.view(torch.int16) - 1).view(dtype)
        if dtype.itemsize == 2
        else torch.nextafter(rc, torch.tensor(0.0, dtype=dtype))
    )
    values = [math.inf, -math.inf, math.nan, c, -c, 0.0, -0.0, 1e30, -1e30]
    t = torch.tensor(values, dtype=dtype, device=device)
    t = torch.cat([t, torch.stack([rc, -rc, above, -above, below, -below]).to(device)])
    t = torch.cat([t, randn(1000, dtype, device, seed=1)])
    t[500] = math.nan
    t[777] = -math.inf
    count = check_against_reference(backend, [t], c, str(dtype))
    ours = t.clone()
    gankernels.clip_([ours], c, impl=backend)
    assert torch.isnan(ours[2]) and torch.isnan(ours[500])
    assert ours[0] == rc and ours[1] == -rc
    assert int(count) >= 8  # inf, -inf, c, -c, the two +-rc, the two above it


def test_noncontiguous_params_clamped_in_place(backend):
    """Strided views are clamped in place, through their own memory: the base sees it."""
    device = device_for(backend)
    base = randn(4000, torch.float32, device, seed=2, scale=0.05).reshape(40, 100)
    expected = base.clone()
    views = [base[:, ::3], base.t()[5:9], base[10:20, 50:]]
    ours_count = gankernels.clip_(views, 0.02, impl=backend)
    expected_views = [expected[:, ::3], expected.t()[5:9], expected[10:20, 50:]]
    want_count = reference.clip_(expected_views, 0.02)
    assert int(ours_count) == int(want_count)
    torch.testing.assert_close(base, expected, rtol=0, atol=0)


def test_overlapping_param_is_rejected_before_anything_is_written(backend):
    device = device_for(backend)
    first = torch.tensor([5.0, -5.0], device=device)
    expanded = torch.tensor([3.0], device=device).expand(4)
    with pytest.raises(ValueError, match=r"clip_: params\[1\] has elements that share memory"):
        gankernels.clip_([first, expanded], 1.0, impl=backend)
    assert first.tolist() == [5.0, -5.0]  # nothing was written


def test_count_is_independent_of_thread_count():
    device_for("cpu")
    params = [randn(300_001, torch.float32, "cpu", seed=3), randn(5, torch.float16, "cpu", 4)]
    threads = torch.get_num_threads()
    counts = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            counts.append(int(torch.ops.gankernels.clip_(clone_all(params), 0.01)))
    finally:
        torch.set_num_threads(threads)
    assert counts[0] == counts[1] == int(reference.clip_(clone_all(params), 0.01))


def test_parameters_of_a_module(backend):
    """The WGAN use: nn.Parameters (leaves that require grad) clipped under the public API."""
    device = device_for(backend)
    torch.manual_seed(0)
    critic = torch.nn.Sequential(
        torch.nn.Linear(2, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1)
    ).to(device)
    expected = [p.detach().clone() for p in critic.parameters()]
    count = gankernels.clip_(critic.parameters(), 0.05, impl=backend)
    want = reference.clip_(expected, 0.05)
    assert int(count) == int(want) > 0
    for p, e in zip(critic.parameters(), expected):
        torch.testing.assert_close(p.detach(), e, rtol=0, atol=0)
        assert p.requires_grad


def test_clipping_records_no_graph_and_bumps_versions(backend):
    """Called with grad mode on, as a training loop does: the parameters stay leaves, and their
    version counters move as for `with torch.no_grad(): p.clamp_()`, so a backward through a
    graph that saved a parameter before the clip raises rather than using clipped values."""
    device = device_for(backend)
    x = make((5, 3), torch.float32, device, seed=40, requires_grad=True)
    w = torch.nn.Parameter(make((3,), torch.float32, device, seed=41, scale=0.05))
    before = w._version
    loss = (x * w).sum()  # saves w for the backward
    for op in (gankernels.clip_, backend_op(OP, backend)):
        kwargs = {"impl": backend} if op is gankernels.clip_ else {}
        op([w], 0.01, **kwargs)
        assert w.is_leaf and w.grad_fn is None and w.requires_grad
    assert w._version == before + 2
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


# --- op registration --------------------------------------------------------------------------


def test_opcheck_every_sample(backend):
    device = device_for(backend)
    op = backend_op(OP, backend)
    for dtype in DTYPES:
        for _, args, kwargs in sample_inputs(OP, device, dtype):
            torch.library.opcheck(op, args, kwargs)


def test_torch_compile_fullgraph(backend):
    device = device_for(backend)
    torch._dynamo.reset()

    def step(params):
        return gankernels.clip_(params, 0.01, impl=backend)

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    params = [randn(n, torch.float32, device, seed=n, scale=0.05) for n in (10, 300, 7)]
    expected = clone_all(params)
    count = compiled(params)
    assert int(count) == int(reference.clip_(expected, 0.01))
    for p, e in zip(params, expected):
        torch.testing.assert_close(p, e, rtol=0, atol=0)


# --- property-based --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 5000), min_size=1, max_size=12),
    dtypes=st.lists(st.sampled_from(DTYPES), min_size=1, max_size=12),
    c=st.floats(1e-4, 10.0),
    scale=st.floats(1e-3, 20.0),
    seed=st.integers(0, 2**16),
)
def test_property_matches_reference(backend, sizes, dtypes, c, scale, seed):
    device = device_for(backend)
    params = [
        randn(n, dtypes[i % len(dtypes)], device, seed=seed + i, scale=scale)
        for i, n in enumerate(sizes)
    ]
    check_against_reference(backend, params, c, f"{backend} {sizes}")


# --- bad input --------------------------------------------------------------------------------


def call_public(params, c):
    return gankernels.clip_(params, c, impl="cpu")


def call_op(params, c):
    return torch.ops.gankernels.clip_(params, c)


@pytest.mark.parametrize("call", (call_public, call_op), ids=("public", "op"))
@pytest.mark.parametrize(
    "case",
    (
        "zero_c",
        "negative_c",
        "tiny_negative_c",
        "huge_negative_c",
        "nan_c",
        "int_dtype",
        "bool_dtype",
    ),
)
def test_bad_input_is_named(call, case):
    device_for("cpu")
    good = torch.randn(3)
    fn, message = {
        "zero_c": (lambda: call([good], 0.0), "clip_: c must be a positive number, got 0"),
        "negative_c": (
            lambda: call([good], -0.01),
            "clip_: c must be a positive number, got -0.01",
        ),
        # Numbers as Python's repr() writes them, from C++ too (csrc/checks.h py_float).
        "tiny_negative_c": (
            lambda: call([good], -1e-05),
            "clip_: c must be a positive number, got -1e-05",
        ),
        "huge_negative_c": (
            lambda: call([good], -1e15),
            "clip_: c must be a positive number, got -1000000000000000.0",
        ),
        "nan_c": (lambda: call([good], math.nan), "clip_: c must be a positive number, got nan"),
        "int_dtype": (
            lambda: call([good, torch.ones(3, dtype=torch.int32)], 0.1),
            "clip_: params[1] must be float32, float64, float16 or bfloat16, got",
        ),
        "bool_dtype": (
            lambda: call([torch.ones(2, dtype=torch.bool)], 0.1),
            "clip_: params[0] must be float32, float64, float16 or bfloat16, got",
        ),
    }[case]
    before = good.clone()
    # The compiled op raises the Python check's own exception type (csrc/checks.h).
    want = TypeError if "dtype" in case else ValueError
    with pytest.raises(want, match=re.escape(message)) as info:
        fn()
    assert info.type is want
    torch.testing.assert_close(good, before)  # nothing was written


def test_empty_list_is_named():
    with pytest.raises(ValueError, match=re.escape("clip_: params is empty; need at least one")):
        gankernels.clip_([], 0.01, impl="cpu")
    # The dispatcher needs a tensor to choose a kernel, so the op itself refuses an empty list
    # before the kernel's own check can run.
    with pytest.raises(RuntimeError, match="tensor"):
        torch.ops.gankernels.clip_([], 0.01)


def test_single_tensor_instead_of_a_list_is_named():
    with pytest.raises(TypeError, match="params must be a list of tensors, got a single tensor"):
        gankernels.clip_(torch.randn(3), 0.01, impl="cpu")


def test_mixed_devices_public():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "clip_: every tensor in params must be on one device; params[0] is on cpu, "
            "params[1] on meta"
        ),
    ):
        gankernels.clip_([torch.randn(3), torch.randn(3, device="meta")], 0.01, impl="cpu")


@pytest.mark.skipif(not HAS_GPU, reason="no CUDA GPU: a second device is needed to mix devices")
def test_mixed_devices_op():
    with pytest.raises(
        ValueError,
        match=re.escape("every tensor in params must be on one device; params[0] is on cuda"),
    ):
        torch.ops.gankernels.clip_([torch.randn(3, device="cuda"), torch.randn(3)], 0.01)
