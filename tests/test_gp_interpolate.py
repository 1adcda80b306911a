"""gp_interpolate: x_hat_i = eps_i * real_i + (1 - eps_i) * fake_i, against the reference.

Every test names the backend it exercises through the `backend` fixture (cpu, cuda, triton) and
the public function is called with that explicit `impl=`, which raises when the backend cannot
run. The contract every op keeps (the sample sweep over dtypes, opcheck, torch.compile,
gradcheck, bad input, determinism, which backend ran) is in tests/test_op_contract.py; these
are gp_interpolate's edge cases.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gankernels import reference
from gankernels.ops import gp_interpolate
from gankernels.testing import (
    DTYPES,
    assert_close,
    dense_strides,
    direct_op,
    is_dense,
    large_shapes_for,
    layouts,
    make,
    sample_inputs,
)


def float64_leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float64).requires_grad_(t.requires_grad)


def check_against_reference(backend, real, fake, eps, upstream, label):
    """Forward values, dtype and layout, then the three gradients for `upstream`.

    The oracle is the reference evaluated in float64 on the same (rounded) inputs and rounded
    to the result's dtype: eps's gradient sums 10^5 products, where a float32 reference would
    itself drift by more than float32's tolerance.
    """
    dtype = real.dtype
    out = gp_interpolate(real, fake, eps, impl=backend)
    real64, fake64, eps64 = (float64_leaf(t) for t in (real, fake, eps))
    expected = reference.gp_interpolate(real64, fake64, eps64)
    assert out.dtype == dtype and out.device == real.device, label
    assert_close(out, expected.to(dtype), dtype, label=f"{label} forward")
    if is_dense(real):
        assert dense_strides(out) == dense_strides(real), f"{label}: output layout {out.stride()}"
    triples = [
        (name, t, t64)
        for name, t, t64 in (("real", real, real64), ("fake", fake, fake64), ("eps", eps, eps64))
        if t.requires_grad
    ]
    got = torch.autograd.grad(out, [t for _, t, _ in triples], upstream)
    want = torch.autograd.grad(expected, [t64 for _, _, t64 in triples], upstream.double())
    for (name, t, _), g, w in zip(triples, got, want, strict=True):
        assert g.dtype == t.dtype, f"{label}: a gradient has dtype {g.dtype}, its input {t.dtype}"
        assert_close(g, w.to(t.dtype), dtype, label=f"{label} grad_{name}")


def test_formula_by_hand(backend, device):
    """eps = 1 gives real, eps = 0 gives fake, eps = 1/4 a quarter of the way; the backward
    gives eps * g, (1 - eps) * g and sum_j g_ij (real_ij - fake_ij), written out by hand."""
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0], [8.0, -4.0]], device=device, requires_grad=True)
    fake = torch.tensor([[5.0, 6.0], [7.0, 8.0], [0.0, 4.0]], device=device, requires_grad=True)
    eps = torch.tensor([1.0, 0.0, 0.25], device=device, requires_grad=True)
    out = gp_interpolate(real, fake, eps, impl=backend)
    assert out.tolist() == [[1.0, 2.0], [7.0, 8.0], [2.0, 2.0]]
    upstream = torch.tensor([[1.0, 2.0], [3.0, 4.0], [4.0, -8.0]], device=device)
    grad_real, grad_fake, grad_eps = torch.autograd.grad(out, (real, fake, eps), upstream)
    assert grad_real.tolist() == [[1.0, 2.0], [0.0, 0.0], [1.0, -2.0]]
    assert grad_fake.tolist() == [[0.0, 0.0], [3.0, 4.0], [3.0, -6.0]]
    # (1-5)*1 + (2-6)*2, (3-7)*3 + (4-8)*4, 8*4 + (-8)*(-8)
    assert grad_eps.tolist() == [-12.0, -28.0, 96.0]


@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16), ids=str)
def test_large_samples(backend, device, dtype):
    """More than 2^16 elements per sample and 41x401x3, in every layout."""
    for label, (real, fake, eps), _ in sample_inputs(
        "gp_interpolate", device, dtype, requires_grad=True, shapes=large_shapes_for(backend)
    ):
        upstream = make(real.shape, dtype, device, seed=7, scale=0.5)
        check_against_reference(backend, real, fake, eps, upstream, f"{backend} {label}")


def test_eps_without_grad_gives_real_and_fake_grads(backend, device):
    real = make((4, 3, 5), torch.float32, device, seed=1, requires_grad=True)
    fake = make((4, 3, 5), torch.float32, device, seed=2, requires_grad=True)
    eps = torch.tensor([0.0, 0.25, 0.5, 1.0], device=device)
    upstream = make((4, 3, 5), torch.float32, device, seed=3)
    check_against_reference(backend, real, fake, eps, upstream, backend)
    # Only fake needs a gradient (the usual WGAN-GP case, real is data).
    out = gp_interpolate(real.detach(), fake, eps, impl=backend)
    (grad_fake,) = torch.autograd.grad(out, fake, upstream)
    assert_close(grad_fake, (1 - eps).view(-1, 1, 1) * upstream, label="grad_fake")


def test_backward_op_without_real_returns_zero_eps_grad(backend, device):
    grad = make((3, 2, 7), torch.float32, device, seed=4)
    eps = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64, device=device)
    grad_real, grad_fake, grad_eps = direct_op("gp_interpolate_backward", backend)(
        grad, eps, None, None
    )
    e = eps.to(torch.float32).view(-1, 1, 1)
    assert_close(grad_real, e * grad, label="grad_real")
    assert_close(grad_fake, (1 - e) * grad, label="grad_fake")
    assert grad_eps.shape == (3,) and grad_eps.dtype == torch.float64
    assert torch.equal(grad_eps, torch.zeros_like(grad_eps))


@pytest.mark.parametrize("case", ["channels_last", "batch_inner", "expanded", "eps_strided"])
def test_layouts(backend, device, case):
    """Outputs keep real's layout; any input strides give the reference's values."""
    shape = (4, 3, 5, 6)
    gen = torch.Generator().manual_seed(11)
    real = torch.randn(shape, generator=gen)
    fake = torch.randn(shape, generator=gen)
    eps = torch.rand(4, generator=gen)
    if case == "channels_last":
        real = real.contiguous(memory_format=torch.channels_last)
    elif case == "batch_inner":
        # Dense, but the batch dim is not the outermost one.
        real = real.permute(1, 0, 2, 3).contiguous().permute(1, 0, 2, 3)
        fake = fake.permute(2, 1, 0, 3).contiguous().permute(2, 1, 0, 3)
    elif case == "expanded":
        real = real[:, :1, :1, :1].expand(shape)
        fake = fake[:1].expand(shape)
    else:
        eps = torch.rand(8, generator=gen)[::2]
    real, fake, eps = (t.to(device).requires_grad_() for t in (real, fake, eps))
    upstream = make(shape, torch.float32, device, seed=12, layout="noncontiguous")
    check_against_reference(backend, real, fake, eps, upstream, f"{backend} {case}")
    if case == "channels_last":
        out = gp_interpolate(real, fake, eps, impl=backend)
        assert out.is_contiguous(memory_format=torch.channels_last)


def test_eps_of_another_dtype(backend, device):
    """eps is read in the computation dtype whatever its own; its gradient keeps its dtype."""
    real = make((3, 10), torch.bfloat16, device, seed=13, requires_grad=True)
    fake = make((3, 10), torch.bfloat16, device, seed=14, requires_grad=True)
    eps = torch.tensor([0.3, 0.6, 0.9], dtype=torch.float64, device=device, requires_grad=True)
    upstream = make((3, 10), torch.bfloat16, device, seed=15)
    check_against_reference(backend, real, fake, eps, upstream, f"{backend} eps f64")


# The Triton interpreter computes with numpy, which warns on inf * 0; the values are torch's.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_nan_and_inf_follow_torch(backend, device):
    """NaN propagates; inf * 0 (eps = 0 or 1 against an infinite input) gives NaN, as in torch."""
    real = make((4, 6), torch.float32, device, seed=16, requires_grad=True)
    fake = make((4, 6), torch.float32, device, seed=17, requires_grad=True)
    with torch.no_grad():
        real[0, 1] = float("nan")
        real[1, 2] = float("inf")
        fake[2, 3] = float("-inf")
        fake[3, 0] = float("inf")
    eps = torch.tensor([0.5, 0.0, 1.0, 0.25], device=device, requires_grad=True)
    out = gp_interpolate(real, fake, eps, impl=backend)
    expected = reference.gp_interpolate(real, fake, eps)
    assert torch.isnan(out[0, 1]) and torch.isnan(out[1, 2]) and torch.isnan(out[2, 3])
    assert_close(out, expected, label="forward", equal_nan=True)
    upstream = make((4, 6), torch.float32, device, seed=18)
    upstream[1, 0] = float("nan")
    got = torch.autograd.grad(out, (real, fake, eps), upstream)
    want = torch.autograd.grad(expected, (real, fake, eps), upstream)
    for name, g, w in zip(("real", "fake", "eps"), got, want, strict=True):
        assert_close(g, w, label=f"grad_{name}", equal_nan=True)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batch=st.integers(1, 5),
    rest=st.lists(st.integers(1, 9), min_size=0, max_size=3),
    dtype=st.sampled_from(DTYPES),
    layout_index=st.integers(0, 3),
    seed=st.integers(0, 2**16),
)
def test_property_matches_reference(backend, device, batch, rest, dtype, layout_index, seed):
    shape = (batch, *rest)
    options = layouts(shape) if rest else ("contiguous",)
    layout = options[layout_index % len(options)]
    real = make(shape, dtype, device, seed=seed, layout=layout, requires_grad=True)
    fake = make(shape, dtype, device, seed=seed + 1, requires_grad=True)
    gen = torch.Generator().manual_seed(seed)
    eps = torch.rand(batch, generator=gen).to(device).requires_grad_()
    upstream = make(shape, dtype, device, seed=seed + 2)
    check_against_reference(backend, real, fake, eps, upstream, f"{shape} {dtype} {layout}")
