"""norm_penalty: P = weight / B * sum_i phi(||inv_scale * g_i|| - target), against the reference.

Every test names the backend it exercises through the `backend` fixture (cpu, cuda, triton) and
calls the public function with that explicit `impl=`, which raises when the backend cannot run;
`test_named_backend_ran` also finds the backend's ops in a profiler trace.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import device_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gankernels import reference
from gankernels.ops import norm_penalty
from gankernels.ops._checks import check_norm_penalty
from gankernels.ops.registry import backend_op
from gankernels.testing import (
    DTYPES,
    SMALL_SHAPES,
    assert_close,
    check_error_type,
    direct_op,
    dispatch_keyset,
    large_shapes_for,
    layouts,
    make,
    op_qualname,
    ops_run,
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


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_matches_reference(backend, device, dtype):
    for i, (label, (grad, *params), _) in enumerate(
        sample_inputs("norm_penalty", device, dtype, requires_grad=True, shapes=SMALL_SHAPES)
    ):
        check_against_reference(backend, grad, params, f"{backend} {dtype} {label}", seed=i)


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


def test_named_backend_ran(backend, device):
    grad = make((2, 3, 4, 4), torch.float32, device, seed=4, requires_grad=True)

    def step():
        loss, _ = norm_penalty(grad, impl=backend)
        loss.backward()

    names = ops_run(step)
    for op in ("norm_penalty", "norm_penalty_backward"):
        assert op_qualname(op, backend) in names, f"{op} of {backend} did not run: {names}"


PARAMS = [
    (1.0, 10.0, False, 1.0),
    (1.0, 10.0, True, 1.0),
    (0.0, 5.0, False, 1.0),
    (1.0, 10.0, False, 0.5),
]


@pytest.mark.parametrize("params", PARAMS, ids=str)
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 2, 2)], ids=str)
def test_gradcheck_and_gradgradcheck(backend, device, shape, params):
    # Rows of norm ~0.4 .. 2.5: away from the one-sided kink at n = target.
    grad = make(shape, torch.float64, device, seed=5)
    grad = grad * torch.tensor(
        [0.3, 1.6, 0.8][: shape[0]], dtype=torch.float64, device=device
    ).view(-1, *[1] * (len(shape) - 1))
    if len(shape) == 4:
        grad = grad.contiguous(memory_format=torch.channels_last)
    grad.requires_grad_()

    def fn(g):
        return norm_penalty(g, *params, impl=backend)

    assert torch.autograd.gradcheck(fn, (grad,))
    assert torch.autograd.gradgradcheck(fn, (grad,))


def test_opcheck(backend, device):
    """torch.library.opcheck on the backend's op: on every small sample input the schema,
    fake-kernel and autograd-registration checks, and the slow AOT-dispatch check once per shape
    and layout with the four parameter sets taken in turn; the fake-kernel check on the large
    samples; then the backward op, per dtype and parameter set."""
    forward = backend_op("norm_penalty", backend)
    backward = direct_op("norm_penalty_backward", backend)
    cases = list(
        sample_inputs(
            "norm_penalty", device, torch.float32, requires_grad=True, shapes=SMALL_SHAPES
        )
    )
    # The large samples: the fake kernel's output metadata against the op's.
    for _, args, kwargs in sample_inputs(
        "norm_penalty", device, torch.float32, shapes=large_shapes_for(backend)
    ):
        torch.library.opcheck(forward, args, kwargs, test_utils="test_faketensor")
    for i, (_, args, kwargs) in enumerate(cases):
        # 4 parameter sets per (shape, layout) in a row: take one per group, rotating.
        if i % 4 == (i // 4) % 4:
            torch.library.opcheck(forward, args, kwargs)
        else:
            torch.library.opcheck(
                forward,
                args,
                kwargs,
                test_utils=("test_schema", "test_autograd_registration", "test_faketensor"),
            )
    for dtype in DTYPES:
        grad = make((3, 2, 5, 4), dtype, device, seed=6)
        opmath = reference.opmath_dtype(dtype)
        for target, weight, one_sided, inv_scale in PARAMS:
            _, norms = reference.norm_penalty(grad, target, weight, one_sided, inv_scale)
            grad_loss = torch.tensor(0.5, dtype=opmath, device=device)
            grad_norms = torch.randn(3, dtype=opmath, device=device)
            for gn in (None, grad_norms):
                torch.library.opcheck(
                    backward, (grad_loss, gn, grad, norms, target, weight, one_sided, inv_scale)
                )


def test_compile_fullgraph(backend, device):
    """A first-order function calling the op compiles with no graph break and matches eager."""

    def penalty(g):
        loss, norms = norm_penalty(g, 1.0, 10.0, False, 1.0, impl=backend)
        return loss + 0.1 * norms.sum()

    compiled = torch.compile(penalty, fullgraph=True)
    g = make((4, 3, 6, 5), torch.float32, device, seed=7, requires_grad=True)
    got = compiled(g)
    want = penalty(g)
    assert_close(got, want, label="compiled loss")
    assert_close(
        torch.autograd.grad(got, g)[0], torch.autograd.grad(want, g)[0], label="compiled grad"
    )


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


# --- bad input --------------------------------------------------------------------------------

_OK = (1.0, 10.0, False, 1.0)


def _bad_cases(device):
    grad = torch.randn(4, 3, device=device)
    return {
        "int_grad": (
            (grad.to(torch.int32), *_OK),
            r"grad must be float32, float64, float16 or bfloat16",
        ),
        "bool_grad": ((grad > 0, *_OK), r"grad must be float32, float64, float16 or bfloat16"),
        "empty_batch": ((grad[:0], *_OK), r"grad has an empty batch \(shape \[0, 3\]\)"),
        "zero_dim": ((grad[0, 0], *_OK), r"grad must have a batch dimension"),
        "target": ((grad, -0.5, 10.0, False, 1.0), r"target must be >= 0, got -0.5"),
        "inv_scale_zero": ((grad, 1.0, 10.0, False, 0.0), r"inv_scale must be > 0, got 0"),
        "inv_scale_negative": ((grad, 1.0, 10.0, False, -2.0), r"inv_scale must be > 0, got -2"),
        "weight_nan": ((grad, 1.0, float("nan"), False, 1.0), r"weight must be a number"),
    }


BAD = tuple(_bad_cases("cpu"))


@pytest.fixture(params=("cpu", "cuda"))
def compiled_backend(request) -> str:
    """The compiled kernels only: their C++ TORCH_CHECKs guard direct torch.ops calls. (The
    Triton ops are reached through the public function, which checks for them.)"""
    return device_for(request.param)


@pytest.mark.parametrize("case", BAD)
def test_bad_input_public(backend, device, case):
    args, message = _bad_cases(device)[case]
    with pytest.raises((ValueError, TypeError), match=message) as info:
        norm_penalty(*args, impl=backend)
    assert "norm_penalty: " in str(info.value)


@pytest.mark.parametrize("case", BAD)
def test_bad_input_op(compiled_backend, case):
    args, message = _bad_cases(compiled_backend)[case]
    grad, target, weight, _, inv_scale = args
    want = check_error_type(check_norm_penalty, grad, target, weight, inv_scale)
    with pytest.raises(want, match=f"norm_penalty: .*{message}") as info:
        torch.ops.gankernels.norm_penalty(*args)
    assert info.type is want


def test_bad_input_backward_op(compiled_backend):
    """Each argument of norm_penalty_backward, called directly. A meta tensor stands in for a
    second device; the call is sent to the backend's own kernel, which must refuse it."""
    device = compiled_backend
    op = torch.ops.gankernels.norm_penalty_backward
    grad = torch.randn(4, 3, device=device)
    norms = grad.norm(dim=1)
    gl = torch.tensor(1.0, device=device)
    cases = [
        ((gl.reshape(1), None, grad, norms), ValueError, r"grad_loss must be a 0-dim tensor"),
        ((gl, None, grad, norms[:3]), ValueError, r"norms must have shape \[B\] = \[4\]"),
        (
            (gl, torch.ones(5, device=device), grad, norms),
            ValueError,
            r"grad_norms must have shape \[B\]",
        ),
        (
            (gl, None, grad, norms.long()),
            TypeError,
            r"norms must be float32, float64, float16 or bfloat16, got int64",
        ),
        ((gl.int(), None, grad, norms), TypeError, r"grad_loss must be float32, float64"),
        (
            (gl, None, grad.int(), norms),
            TypeError,
            r"grad must be float32, float64, float16 or bfloat16",
        ),
        ((gl, None, grad[:0], norms[:0]), ValueError, r"grad has an empty batch"),
    ]
    for args, error, message in cases:
        with pytest.raises(error, match=f"norm_penalty_backward: .*{message}"):
            op(*args, *_OK)
    with pytest.raises(ValueError, match=r"target must be >= 0, got -1\.0"):
        op(gl, None, grad, norms, -1.0, 10.0, False, 1.0)
    meta = torch.device("meta")
    for args, message in (
        ((gl.to(meta), None, grad, norms), r"grad_loss must be on the same device as grad"),
        ((gl, None, grad, norms.to(meta)), r"norms must be on the same device as grad"),
        ((gl, norms.to(meta), grad, norms), r"grad_norms must be on the same device as grad"),
    ):
        with pytest.raises(ValueError, match=message):
            op.default.redispatch(dispatch_keyset(device), *args, *_OK)


def test_bad_impl_is_refused(device):
    with pytest.raises(ValueError, match=r"impl must be one of"):
        norm_penalty(torch.randn(2, 3, device=device), impl="fast")


# --- CPU-kernel specific ----------------------------------------------------------------------


def test_cpu_results_do_not_depend_on_thread_count():
    """Fixed reduction blocks: loss, norms and gradient bitwise equal on 1, 2 and 3 threads."""
    grad = make((3, 70001), torch.float32, "cpu", seed=8)
    gl = torch.tensor(1.5)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            loss, norms = torch.ops.gankernels.norm_penalty(grad, 1.0, 10.0, False, 1.0)
            g = torch.ops.gankernels.norm_penalty_backward(gl, None, grad, norms, *_OK)
            results.append((loss, norms, g))
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            assert torch.equal(a, b)


def test_cpu_kernel_is_registered_for_the_cpu_key():
    for name in ("norm_penalty", "norm_penalty_backward"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"gankernels::{name}", "CPU")
