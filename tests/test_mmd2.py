"""mmd2: every backend against closed forms and against gankernels.reference on the cases the
contract's sample sweep does not reach (tests/test_op_contract.py has the sweep over dtypes and
layouts, opcheck, torch.compile, gradcheck, bad input and determinism).

The closed form (docs/math.md section 8): for x ~ N(0, I_d) and y ~ N(mu, I_d), a difference of
two independent draws is N(m, 2 I_d), and E exp(-||z||^2 / (2 s^2)) for z ~ N(m, v I_d) is
(s^2 / (s^2 + v))^(d/2) exp(-||m||^2 / (2 (s^2 + v))).
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import device_for

import gankernels
from gankernels import reference
from gankernels.ops.mmd2 import DEFAULT_SIGMAS
from gankernels.testing import OpRecorder, assert_close, op_qualname, triton_interpreted


def gaussian_kernel_mean(d: int, mean_sq: float, var: float, sigmas) -> float:
    """E sum_s exp(-||z||^2 / (2 s^2)) for z ~ N(m, var I_d), ||m||^2 = mean_sq."""
    return sum(
        (s * s / (s * s + var)) ** (d / 2) * math.exp(-mean_sq / (2 * (s * s + var)))
        for s in sigmas
    )


def expected_mmd2(d: int, shift: float, n: int, m: int, sigmas, unbiased: bool) -> float:
    """E[estimate] for x ~ N(0, I_d) (n draws) and y ~ N(shift e_1, I_d) (m draws)."""
    same = gaussian_kernel_mean(d, 0.0, 2.0, sigmas)  # E k(x, x') and E k(y, y')
    cross = gaussian_kernel_mean(d, shift * shift, 2.0, sigmas)
    population = 2 * same - 2 * cross
    if unbiased:
        return population
    # The kept diagonal: k(a, a) = len(sigmas), weight 1/n of the self term.
    return population + (len(sigmas) - same) * (1 / n + 1 / m)


def gaussian_batches(d, shift, n, m, seed, device, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = torch.randn(m, d, generator=gen, dtype=torch.float64)
    y[:, 0] += shift
    return x.to(device, dtype), y.to(device, dtype)


CLOSED_FORM_CASES = [
    (d, shift, sigmas, estimator)
    for d, shift, sigmas in ((4, 1.0, (1.0,)), (16, 1.0, DEFAULT_SIGMAS), (2, 0.0, DEFAULT_SIGMAS))
    for estimator in ("unbiased", "biased")
]


def test_two_gaussians_match_the_closed_form(backend):
    """For each case the mean of four estimates on independent draws of 1024 + 1024 samples is
    within four standard errors of E[estimate]. A wrong bandwidth scale (exp(-d^2 / s^2)) or a
    cross term off by a factor 2 misses by far more (test_closed_form_test_can_fail); the finer
    points, the diagonal and the divisors, are the contract's comparison with the reference.
    Interpreted Triton (about 18 s a case) takes the one-bandwidth pair of cases."""
    device = device_for(backend)
    cases = CLOSED_FORM_CASES[:2] if triton_interpreted(backend) else CLOSED_FORM_CASES
    n = m = 1024
    for d, shift, sigmas, estimator in cases:
        values = []
        for seed in range(4):
            x, y = gaussian_batches(d, shift, n, m, seed, device)
            values.append(
                float(gankernels.mmd2(x, y, sigmas=sigmas, estimator=estimator, impl=backend))
            )
        t = torch.tensor(values, dtype=torch.float64)
        want = expected_mmd2(d, shift, n, m, sigmas, estimator == "unbiased")
        stderr = float(t.std()) / 2
        assert abs(float(t.mean()) - want) < 4 * stderr + 1e-6, (d, sigmas, estimator, values)


def test_closed_form_test_can_fail():
    """The closed-form check rejects the mistakes it names. With one bandwidth in d = 4 its
    tolerance is about 0.009 (four standard errors of 0.0022, measured over 16 draws); each
    mistake moves the expected value by more than 0.015. (The default mixture of five
    bandwidths is nearly scale-free there: a bandwidth mistake moves it by less than its noise,
    so the one-bandwidth case is the one that catches it.)"""
    n = m = 1024
    sigmas = (1.0,)
    right = expected_mmd2(4, 1.0, n, m, sigmas, True)
    same = gaussian_kernel_mean(4, 0.0, 2.0, sigmas)
    cross = gaussian_kernel_mean(4, 1.0, 2.0, sigmas)
    mistakes = {
        "exp(-d^2 / s^2)": expected_mmd2(4, 1.0, n, m, [s / math.sqrt(2) for s in sigmas], True),
        "cross term halved": 2 * same - cross,
        "cross term doubled": 2 * same - 4 * cross,
    }
    for label, wrong in mistakes.items():
        assert abs(wrong - right) > 0.015, (label, wrong, right)


def test_identical_batches_give_zero_biased_and_near_zero_unbiased(backend):
    device = device_for(backend)
    x, _ = gaussian_batches(3, 0.0, 50, 50, 1, device, torch.float64)
    biased = gankernels.mmd2(x, x.clone(), estimator="biased", impl=backend)
    assert abs(float(biased)) < 1e-12
    # Unbiased, for x = y: 2 S / (n (n-1)) - 2 (S + n k0) / n^2 with S the off-diagonal sum and
    # k0 = k(a, a): negative, as S < n (n-1) k0 for distinct points.
    unbiased = gankernels.mmd2(x, x.clone(), impl=backend)
    assert_close(unbiased, reference.mmd2(x, x, DEFAULT_SIGMAS, True), torch.float64)
    assert float(unbiased) < 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_accumulate_in_float32(backend, dtype):
    """A half input's MMD^2 and gradients are those of its (rounded) values computed in
    float32: held to float32's tolerance against the float64 reference of the same values,
    which a half-precision accumulation could not meet."""
    device = device_for(backend)
    x, y = gaussian_batches(8, 0.5, 130, 77, 3, device, dtype)
    x.requires_grad_()
    y.requires_grad_()
    value = gankernels.mmd2(x, y, sigmas=[0.5, 2.0], impl=backend)
    assert value.dtype == torch.float32
    a, b = x.detach().double().requires_grad_(), y.detach().double().requires_grad_()
    want = reference.mmd2(a, b, [0.5, 2.0], True)
    assert_close(value, want.float(), torch.float32, label="value")
    gx, gy = torch.autograd.grad(value * 1000, [x, y])
    wx, wy = torch.autograd.grad(want * 1000, [a, b])
    assert gx.dtype == dtype and gy.dtype == dtype
    # The gradients are rounded to the input's dtype once, at the end.
    assert_close(gx, wx.to(dtype), dtype, label="grad x")
    assert_close(gy, wy.to(dtype), dtype, label="grad y")


def test_far_apart_batches_lose_nothing_to_underflow(backend):
    """Batches far apart: every cross kernel underflows to 0, the self terms stay; the value is
    the sum of the two self terms, and the gradients are those of the self terms alone."""
    device = device_for(backend)
    x, y = gaussian_batches(2, 0.0, 40, 30, 5, device, torch.float32)
    y = y + 1000.0
    value = gankernels.mmd2(x, y, sigmas=[1.0], impl=backend)
    want = reference.mmd2(x.double(), y.double(), [1.0], True)
    assert_close(value, want.float(), torch.float32)


def test_nan_input_gives_nan(backend):
    device = device_for(backend)
    x, y = gaussian_batches(3, 0.0, 10, 12, 6, device, torch.float32)
    x[4, 1] = math.nan
    assert math.isnan(float(gankernels.mmd2(x, y, impl=backend)))


@pytest.mark.parametrize("n,m", [(129, 64), (8, 200)])
def test_tile_edges_and_thread_counts(backend, n, m):
    """Batches one past and exactly at the CPU's 8-row and 64-column tiles (and Triton's and
    CUDA's 32 and 64), on 1 and 3 threads: the same value and gradients, bit for bit, and the
    reference's."""
    device = device_for(backend)
    x, y = gaussian_batches(5, 0.3, n, m, 7, device, torch.float32)
    results = []
    for threads in (1, 3):
        old = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            a, b = x.clone().requires_grad_(), y.clone().requires_grad_()
            with OpRecorder() as rec:
                value = gankernels.mmd2(a, b, impl=backend)
                grads = torch.autograd.grad(value, [a, b])
            assert rec.ran("mmd2", backend), op_qualname("mmd2", backend)
            assert rec.ran("mmd2_backward", backend), op_qualname("mmd2_backward", backend)
            results.append((value, *grads))
        finally:
            torch.set_num_threads(old)
    for first, second in zip(*results):
        assert torch.equal(first, second)
    a, b = x.double().requires_grad_(), y.double().requires_grad_()
    want = reference.mmd2(a, b, DEFAULT_SIGMAS, True)
    assert_close(results[0][0], want.float(), torch.float32)
    for got, w in zip(results[0][1:], torch.autograd.grad(want, [a, b])):
        assert_close(got, w.float(), torch.float32)


def test_estimator_and_sigmas_arguments():
    x, y = torch.randn(5, 2), torch.randn(6, 2)
    with pytest.raises(ValueError, match="estimator must be 'unbiased' or 'biased', got 'mean'"):
        gankernels.mmd2(x, y, estimator="mean")
    one = gankernels.mmd2(x, y, sigmas=2.0)
    assert torch.equal(one, gankernels.mmd2(x, y, sigmas=[2.0]))


def test_kernel_values_are_accurate_to_a_few_ulp(backend):
    """One pair at distance t: the biased MMD^2's gradient in y is 2 t exp(-t^2 / 2) (sigma 1),
    which exposes each kernel value. float32 within a few ulp of the exact value at the float32
    squared distance (its own rounding, relative 6e-8, is amplified t^2 / 2 times by exp) for
    every t where exp(-t^2 / 2) is a normal float32, and within 2 t 2^-125 beyond (where the
    CPU kernel flushes terms below 2^-125 to 0)."""
    device = device_for(backend)
    ts = torch.linspace(0.05, 14.0, 60 if triton_interpreted(backend) else 280)
    for t in ts.tolist():
        x = torch.zeros(1, 1, device=device)
        y = torch.full((1, 1), t, device=device, requires_grad=True)
        (grad,) = torch.autograd.grad(gankernels.mmd2(x, y, sigmas=[1.0], estimator="biased"), y)
        t32 = float(torch.tensor(t, dtype=torch.float32))
        d2 = float(torch.tensor(t32 * t32, dtype=torch.float32))
        exact = 2 * t32 * math.exp(-d2 / 2)
        flushed = 2 * t32 * 2.0**-125  # what dropping a term below 2^-125 can cost here
        assert abs(float(grad) - exact) <= 4e-7 * exact + flushed, (t, float(grad), exact)
