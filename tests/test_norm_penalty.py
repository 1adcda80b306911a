"""norm_penalty: P = weight / B * sum_i phi(||inv_scale * g_i|| - target), against the reference.

Every test names the backend it exercises through the `backend` fixture (cpu, cuda, triton) and
calls the public function with that explicit `impl=`, which raises when the backend cannot run.
The contract every op keeps (the sample sweep over dtypes, opcheck, torch.compile, gradcheck,
bad input, determinism, which backend ran) is in tests/test_op_contract.py; these are
norm_penalty's edge cases.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gankernels import reference
from gankernels.ops import norm_penalty
from gankernels.testing import (
    DTYPES,
    assert_close,
    large_shapes_for,
    layouts,
    make,
    sample_inputs,
)


def float64_leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float64).requires_grad_(t.requires_grad)


def check_against_reference(backend, grad, params, label, seed=0):
    """(loss, norms): values and dtypes; then the input gradient for an upstream loss gradient
    other than 1, with and without an upstream gradient of the norms.

    The oracle is the reference evaluated in float64 on the same (rounded) inputs: on rows of
    10^5 elements the float32 reference itself is ~3e-5 off (torch's float32 vector_norm), more
    than float32's tolerance, while a kernel that accumulates well must be within it.
    """
    loss, norms = norm_penalty(grad, *params, impl=backend)
    grad64 = float64_leaf(grad)
    want_loss, want_norms = reference.norm_penalty(grad64, *params)
    opmath = reference.opmath_dtype(grad.dtype)
    assert loss.shape == () and loss.dtype == opmath, f"{label}: loss {loss.shape} {loss.dtype}"
    assert norms.shape == (grad.shape[0],) and norms.dtype == opmath, (
        f"{label}: norms {norms.dtype}"
    )
    # The sums accumulate in float32 or better whatever the input: float32's tolerance.
    assert_close(norms, want_norms, opmath, label=f"{label} norms")
    assert_close(loss, want_loss, opmath, label=f"{label} loss")
    if not grad.requires_grad:
        return
    gen = torch.Generator().manual_seed(seed)
    grad_loss = torch.tensor(0.7, dtype=torch.float64)
    grad_norms = torch.randn(grad.shape[0], generator=gen, dtype=torch.float64)
    for outs, wants, ups, what in (
        ((loss,), (want_loss,), (grad_loss,), "loss only"),
        ((loss, norms), (want_loss, want_norms), (grad_loss, grad_norms), "loss and norms"),
    ):
        got_ups = [u.to(opmath).to(grad.device) for u in ups]
        (got,) = torch.autograd.grad(outs, grad, got_ups, retain_graph=True)
        (want,) = torch.autograd.grad(
            wants, grad64, [u.to(grad.device) for u in ups], retain_graph=True
        )
        assert got.dtype == grad.dtype and got.shape == grad.shape
        assert_close(got, want.to(grad.dtype), grad.dtype, label=f"{label} grad ({what})")


def test_formula_by_hand(backend, device):
    """Rows with norms 3, 4 and 0 (target 1, weight 10): P = 10/3 * (2^2 + 3^2 + 1^2) and
    dP/dg_i = 10/3 * 2 (n_i - 1) * g_i / n_i, 0 on the zero row; one-sided at target 3.5."""
    grad = torch.tensor([[3.0, 0.0], [0.0, 4.0], [0.0, 0.0]], device=device, requires_grad=True)
    loss, norms = norm_penalty(grad, 1.0, 10.0, False, 1.0, impl=backend)
    assert norms.tolist() == [3.0, 4.0, 0.0]
    assert math.isclose(loss.item(), 10 / 3 * 14, rel_tol=1e-6)
    (g,) = torch.autograd.grad(loss, grad)
    expected = [[10 / 3 * 4, 0.0], [0.0, 10 / 3 * 6], [0.0, 0.0]]
    assert_close(g, torch.tensor(expected, device=device), label="two-sided grad")
    loss, _ = norm_penalty(grad, 3.5, 10.0, True, 1.0, impl=backend)
    assert math.isclose(loss.item(), 10 / 3 * 0.25, rel_tol=1e-6)
    (g,) = torch.autograd.grad(loss, grad)
    assert_close(
        g,
        torch.tensor([[0.0, 0.0], [0.0, 10 / 3], [0.0, 0.0]], device=device),
        label="one-sided grad",
    )


@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16), ids=str)
def test_large_samples(backend, device, dtype):
    """More than 2^16 elements per sample and 41x401x3, in every layout."""
    for i, (label, (grad, *params), _) in enumerate(
        sample_inputs(
            "norm_penalty", device, dtype, requires_grad=True, shapes=large_shapes_for(backend)
        )
    ):
        check_against_reference(backend, grad, params, f"{backend} {label}", seed=i)


@pytest.mark.parametrize("target,one_sided", [(1.0, False), (1.0, True), (0.0, False)])
def test_zero_rows_give_zero_gradient(backend, device, target, one_sided):
    grad = make((4, 3, 5), torch.float32, device, seed=1)
    grad[0] = 0
    grad[2] = 0
    grad.requires_grad_()
    loss, norms = norm_penalty(grad, target, 10.0, one_sided, 1.0, impl=backend)
    assert norms[0] == 0 and norms[2] == 0
    grad_norms = torch.ones(4, device=device)
    (g,) = torch.autograd.grad((loss, norms), grad, (torch.tensor(2.0, device=device), grad_norms))
    assert torch.isfinite(g).all()
    assert torch.equal(g[0], torch.zeros_like(g[0])) and torch.equal(g[2], torch.zeros_like(g[2]))
    check_against_reference(backend, grad, (target, 10.0, one_sided, 1.0), "zero rows")


@pytest.mark.parametrize("dtype", (torch.float16, torch.bfloat16), ids=str)
def test_half_squares_do_not_overflow(backend, device, dtype):
    """|g| = 300 squares to 9e4 > 65504 (half's max): the sums accumulate in float32."""
    grad = torch.full((3, 500), 300.0, dtype=dtype, device=device)
    grad[1] *= -0.5
    loss, norms = norm_penalty(grad, 1.0, 10.0, False, 1.0, impl=backend)
    expected = grad.double().flatten(1).norm(dim=1)
    assert torch.isfinite(loss) and torch.isfinite(norms).all()
    assert_close(norms, expected.float(), torch.float32, label="half norms")


def test_inv_scale_unscales_in_the_same_pass(backend, device):
    """norm_penalty(s * g, inv_scale=1/s) == norm_penalty(g) (s a power of 2: exact), and the
    gradient with respect to the scaled input is 1/s times the unscaled one."""
    g = make((4, 3, 6, 6), torch.float32, device, seed=2, scale=0.1, requires_grad=True)
    scaled = (g.detach() * 1024).requires_grad_()
    loss, norms = norm_penalty(g, 1.0, 10.0, False, 1.0, impl=backend)
    loss_s, norms_s = norm_penalty(scaled, 1.0, 10.0, False, 1 / 1024, impl=backend)
    assert_close(norms_s, norms, label="norms")
    assert_close(loss_s, loss, label="loss")
    (grad_g,) = torch.autograd.grad(loss, g)
    (grad_s,) = torch.autograd.grad(loss_s, scaled)
    assert_close(grad_s * 1024, grad_g, label="grad")


# The Triton interpreter computes with numpy, which warns on inf / inf; the values are torch's.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("target", (1.0, 0.0))
def test_nan_and_inf_follow_torch(backend, device, target):
    """A row holding NaN has a NaN norm, a row holding inf an inf norm, and the loss is then
    NaN or inf; the gradient of such a row is NaN (inf / inf), as the reference's. The other rows
    keep finite, correct norms and gradients."""
    grad = make((4, 7), torch.float32, device, seed=3)
    grad[1, 2] = float("nan")
    grad[3, 0] = float("-inf")
    grad.requires_grad_()
    loss, norms = norm_penalty(grad, target, 10.0, False, 1.0, impl=backend)
    want_loss, want_norms = reference.norm_penalty(grad, target, 10.0, False, 1.0)
    assert torch.isnan(norms[1]) and norms[3] == float("inf") and torch.isnan(loss)
    assert_close(norms, want_norms, label="norms", equal_nan=True)
    (g,) = torch.autograd.grad(loss, grad)
    (want,) = torch.autograd.grad(want_loss, grad)
    assert torch.isnan(g[1]).all() and torch.isnan(g[3]).all()
    assert_close(g, want, label="grad", equal_nan=True)
    # Inf alone (no NaN row): the loss is inf.
    loss, _ = norm_penalty(grad.detach()[2:], target, 10.0, False, 1.0, impl=backend)
    assert loss.item() == float("inf")


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batch=st.integers(1, 5),
    rest=st.lists(st.integers(1, 9), min_size=0, max_size=3),
    dtype=st.sampled_from(DTYPES),
    layout_index=st.integers(0, 3),
    target=st.sampled_from((0.0, 0.5, 1.0, 2.0)),
    weight=st.floats(0.1, 20.0),
    one_sided=st.booleans(),
    inv_scale=st.sampled_from((1.0, 0.125, 1 / 1024)),
    seed=st.integers(0, 2**16),
)
def test_property_matches_reference(
    backend, device, batch, rest, dtype, layout_index, target, weight, one_sided, inv_scale, seed
):
    shape = (batch, *rest)
    options = layouts(shape) if rest else ("contiguous",)
    layout = options[layout_index % len(options)]
    grad = make(
        shape, dtype, device, seed=seed, layout=layout, scale=1 / inv_scale, requires_grad=True
    )
    check_against_reference(
        backend,
        grad,
        (target, weight, one_sided, inv_scale),
        f"{shape} {dtype} {layout} K={target} os={one_sided} s={inv_scale}",
        seed=seed,
    )
