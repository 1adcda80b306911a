"""clip_: the multi-tensor in-place clamp of every fused backend against gankernels.reference.

Chunk edges, many tensors, empty tensors, mixed dtypes, inf/NaN, values exactly at +-c and
non-contiguous parameters, after apex's multi-tensor fuzz tests. The contract every op keeps (the
sample sweep over dtypes, opcheck, torch.compile, bad input, determinism, which backend ran) is
in tests/test_op_contract.py.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import BACKENDS, device_for
from hypothesis import given, settings
from hypothesis import strategies as st

import gankernels
from gankernels import reference
from gankernels.ops.registry import backend_op
from gankernels.testing import DTYPES, OpRecorder, make, op_qualname

OP = "clip_"


def clone_all(params):
    return [p.detach().clone() for p in params]


def check_against_reference(backend: str, params, c: float, label: str = "") -> torch.Tensor:
    """Clips a copy with the backend and a copy with the reference: same values (bit for bit:
    a clamp only selects values, NaN included), same count, and the backend's op ran."""
    ours, theirs = clone_all(params), clone_all(params)
    with OpRecorder() as rec:
        count = gankernels.clip_(ours, c, impl=backend)
    assert rec.ran(OP, backend), f"{label}: {op_qualname(OP, backend)} did not run: {rec.names}"
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


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_views_starting_at_every_offset_of_a_cache_line(backend, dtype):
    """Dense views whose data starts 0..16 elements past an aligned address (a thread's share
    of the list starts anywhere too): the CPU's vector path peels to the next 64-byte line."""
    device = device_for(backend)
    for k in range(17):
        base = randn(k + 1000 + 3 * k, dtype, device, seed=200 + k, scale=0.02)
        base[k + 5] = math.nan
        check_against_reference(backend, [base[k:]], 0.01, f"offset {k}")


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
    # One op call over a list of several dtypes: its schema, fake kernel and traced form.
    torch.library.opcheck(backend_op(OP, backend), (params, 0.01))


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


# --- bad input -------------------------------------------------------------------------------


def test_empty_list_through_the_op():
    """The dispatcher needs a tensor to choose a kernel, so the op itself refuses an empty list
    before the kernel's own check can run (the public function names the problem: see
    tests/test_op_contract.py)."""
    device_for("cpu")
    with pytest.raises(RuntimeError, match="tensor"):
        torch.ops.gankernels.clip_([], 0.01)
