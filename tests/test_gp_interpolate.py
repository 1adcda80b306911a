"""gp_interpolate: x_hat_i = eps_i * real_i + (1 - eps_i) * fake_i, against the reference.

Every test names the backend it exercises through the `backend` fixture (cpu, cuda, triton) and
the public function is called with that explicit `impl=`, which raises when the backend cannot
run; `test_named_backend_ran` also finds the backend's op in a profiler trace.
"""

from __future__ import annotations

import pytest
import torch
from conftest import device_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gankernels import reference
from gankernels.ops import gp_interpolate
from gankernels.ops._checks import check_gp_interpolate
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


def dense_strides(t: torch.Tensor) -> tuple:
    return tuple(s for n, s in zip(t.shape, t.stride(), strict=True) if n != 1)


def is_dense(t: torch.Tensor) -> bool:
    """Non-overlapping and dense, in any dim order (then empty_like keeps the strides)."""
    expected = 1
    for stride, size in sorted((s, n) for n, s in zip(t.shape, t.stride(), strict=True) if n != 1):
        if stride != expected:
            return False
        expected *= size
    return True


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


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_matches_reference(backend, device, dtype):
    for label, (real, fake, eps), _ in sample_inputs(
        "gp_interpolate", device, dtype, requires_grad=True, shapes=SMALL_SHAPES
    ):
        # An upstream gradient other than ones, in the output's layout-independent order.
        upstream = make(real.shape, dtype, device, seed=len(label), scale=3.0)
        check_against_reference(backend, real, fake, eps, upstream, f"{backend} {dtype} {label}")


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


def test_named_backend_ran(backend, device):
    real = make((2, 3, 4, 4), torch.float32, device, seed=5, requires_grad=True)
    fake = make((2, 3, 4, 4), torch.float32, device, seed=6)
    eps = torch.rand(2, device=device, requires_grad=True)

    def step():
        gp_interpolate(real, fake, eps, impl=backend).square().sum().backward()

    names = ops_run(step)
    for op in ("gp_interpolate", "gp_interpolate_backward"):
        assert op_qualname(op, backend) in names, f"{op} of {backend} did not run: {names}"


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


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 2, 2)], ids=str)
def test_gradcheck_and_gradgradcheck(backend, device, shape):
    real = make(shape, torch.float64, device, seed=19, requires_grad=True)
    fake = make(shape, torch.float64, device, seed=20, requires_grad=True)
    if len(shape) == 4:
        real = real.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    eps = torch.rand(shape[0], dtype=torch.float64, device=device, requires_grad=True)

    def fn(r, f, e):
        return gp_interpolate(r, f, e, impl=backend)

    assert torch.autograd.gradcheck(fn, (real, fake, eps))
    assert torch.autograd.gradgradcheck(fn, (real, fake, eps))


def test_opcheck(backend, device):
    """torch.library.opcheck (schema, fake kernel, autograd registration, AOT dispatch) on every
    small sample input of the backend's op, the fake-kernel check on the large ones, and the
    backward op in every dtype."""
    forward = backend_op("gp_interpolate", backend)
    backward = direct_op("gp_interpolate_backward", backend)
    for _, args, kwargs in sample_inputs(
        "gp_interpolate", device, torch.float32, requires_grad=True, shapes=SMALL_SHAPES
    ):
        torch.library.opcheck(forward, args, kwargs)
    # The large samples: the fake kernel's output metadata (strides included) against the op's.
    for _, args, kwargs in sample_inputs(
        "gp_interpolate", device, torch.float32, shapes=large_shapes_for(backend)
    ):
        torch.library.opcheck(forward, args, kwargs, test_utils="test_faketensor")
    for dtype in DTYPES:
        real, fake, eps = (
            t.detach()
            for t in next(
                iter(sample_inputs("gp_interpolate", device, dtype, shapes=[(3, 2, 5, 4)]))
            )[1]
        )
        grad = make(real.shape, dtype, device, seed=21)
        torch.library.opcheck(backward, (grad, eps, real, fake))
        torch.library.opcheck(backward, (grad, eps, None, None))


def test_compile_fullgraph(backend, device):
    """A first-order function calling the op compiles with no graph break and matches eager."""

    def step(real, fake, eps):
        x_hat = gp_interpolate(real, fake, eps, impl=backend)
        return (x_hat * x_hat).mean()

    compiled = torch.compile(step, fullgraph=True)
    real = make((4, 3, 6, 5), torch.float32, device, seed=22, requires_grad=True)
    fake = make((4, 3, 6, 5), torch.float32, device, seed=23, requires_grad=True)
    eps = torch.rand(4, device=device)
    got = compiled(real, fake, eps)
    want = step(real, fake, eps)
    assert_close(got, want, label="compiled loss")
    assert_close(
        torch.autograd.grad(got, real)[0],
        torch.autograd.grad(want, real)[0],
        label="compiled grad_real",
    )


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


# --- bad input --------------------------------------------------------------------------------


def _bad_cases(device):
    f32 = dict(dtype=torch.float32, device=device)
    real = torch.randn(4, 3, **f32)
    eps = torch.rand(4, **f32)
    meta = torch.device("meta")
    return {
        "shape": ((real, torch.randn(4, 2, **f32), eps), r"fake must have the same shape as real"),
        "eps_length": (
            (real, real, torch.rand(3, **f32)),
            r"eps must have shape \[B\] = \[4\] \(one value per sample\), got \[3\]",
        ),
        "eps_2d": ((real, real, torch.rand(4, 1, **f32)), r"eps must have shape \[B\] = \[4\]"),
        "int_real": (
            (real.to(torch.int32), real, eps),
            r"real must be float32, float64, float16 or bfloat16",
        ),
        "bool_fake": ((real, real > 0, eps), r"fake must be float32, float64, float16 or bfloat16"),
        "int_eps": (
            (real, real, torch.ones(4, dtype=torch.int64, device=device)),
            r"eps must be float32, float64, float16 or bfloat16",
        ),
        "dtype": ((real, real.double(), eps), r"fake must have the same dtype as real"),
        "empty_batch": (
            (torch.randn(0, 3, **f32),) * 2 + (torch.rand(0, **f32),),
            r"real has an empty batch \(shape \[0, 3\]\); need B >= 1",
        ),
        "zero_dim": ((real[0, 0], real[0, 0], eps), r"real must have a batch dimension"),
        "fake_device": ((real, real.to(meta), eps), r"fake must be on the same device as real"),
        "eps_device": ((real, real, eps.to(meta)), r"eps must be on the same device as real"),
    }


BAD = tuple(_bad_cases("cpu"))


@pytest.fixture(params=("cpu", "cuda"))
def compiled_backend(request) -> str:
    """The compiled kernels only: their C++ TORCH_CHECKs guard direct torch.ops calls. (The
    Triton ops are reached through the public function, which checks for them.)"""
    device_for(request.param)
    return request.param


@pytest.mark.parametrize("case", BAD)
def test_bad_input_public(backend, device, case):
    args, message = _bad_cases(device)[case]
    with pytest.raises((ValueError, TypeError), match=message) as info:
        gp_interpolate(*args, impl=backend)
    assert "gp_interpolate: " in str(info.value)


@pytest.mark.parametrize("case", BAD)
def test_bad_input_op(compiled_backend, case):
    """The op called directly (C++ checks for cpu/cuda) gives the same message and Python
    exception type as the Python check. A meta
    tensor stands in for a second device: the call is sent to the backend's dispatch key, so the
    backend's kernel, not the meta kernel, must refuse it."""
    device = compiled_backend
    args, message = _bad_cases(device)[case]
    op = torch.ops.gankernels.gp_interpolate
    want = check_error_type(check_gp_interpolate, *args)
    with pytest.raises(want, match=message) as info:
        if "device" in case:
            op.default.redispatch(dispatch_keyset(device), *args)
        else:
            op(*args)
    assert info.type is want


def test_bad_input_backward_op(compiled_backend):
    device = compiled_backend
    backward = torch.ops.gankernels.gp_interpolate_backward
    grad = torch.randn(4, 3, device=device)
    eps = torch.rand(4, device=device)
    with pytest.raises(ValueError, match=r"eps must have shape \[B\] = \[4\]"):
        backward(grad, torch.rand(5, device=device), None, None)
    with pytest.raises(ValueError, match=r"real and fake must both be given"):
        backward(grad, eps, grad, None)
    with pytest.raises(ValueError, match=r"real must have the same shape as grad"):
        backward(grad, eps, torch.randn(4, 2, device=device), torch.randn(4, 2, device=device))
    with pytest.raises(TypeError, match=r"fake must have the same dtype as grad"):
        backward(grad, eps, grad, grad.double())
    with pytest.raises(ValueError, match=r"gp_interpolate_backward: grad has an empty batch"):
        backward(grad[:0], eps[:0], None, None)
    with pytest.raises(TypeError, match=r"grad must be float32, float64, float16 or bfloat16"):
        backward(grad.to(torch.int16), eps, None, None)


def test_bad_impl_is_refused(device):
    real = torch.randn(2, 3, device=device)
    with pytest.raises(ValueError, match=r"impl must be one of"):
        gp_interpolate(real, real, torch.rand(2, device=device), impl="fast")
    if device == "cpu":
        with pytest.raises(ValueError, match=r"impl='cuda' runs on CUDA tensors"):
            gp_interpolate(real, real, torch.rand(2), impl="cuda")


# --- CPU-kernel specific ----------------------------------------------------------------------


def test_cpu_results_do_not_depend_on_thread_count():
    """The per-sample eps-gradient sums use fixed blocks: bitwise equal on 1 and 2 threads."""
    real = make((3, 70001), torch.float32, "cpu", seed=24)
    fake = make((3, 70001), torch.float32, "cpu", seed=25)
    grad = make((3, 70001), torch.float32, "cpu", seed=26)
    eps = torch.rand(3)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append(torch.ops.gankernels.gp_interpolate_backward(grad, eps, real, fake))
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            assert torch.equal(a, b)


def test_cpu_kernel_is_registered_for_the_cpu_key():
    for name in ("gp_interpolate", "gp_interpolate_backward"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"gankernels::{name}", "CPU")
