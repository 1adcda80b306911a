"""The contract that every backend (cpu, cuda, triton) of every op keeps, checked in one place from
the per-op descriptions in gankernels.testing.CONTRACTS:

- the reference's values over sample_inputs x DTYPES with the shared tolerances, forward and
  gradients (clip_: the tensors clamped in place bit for bit, and the count);
- torch.library.opcheck of the forward and backward ops, and torch.compile(fullgraph=True);
- gradcheck and gradgradcheck;
- bad input refused with the Python check's exception type and a message that names the
  argument, through the public function and through the op itself, with nothing written;
- determinism: bitwise equal results on a second run, and for the CPU kernels on 1, 2 or 3
  threads;
- the backend's own ops are the ones that ran.

Edge cases (layouts, NaN and Inf, large samples, chunk edges, property tests) stay in
tests/test_<op>.py.
"""

from __future__ import annotations

import re

import pytest
import torch

from gankernels.ops.registry import backend_op
from gankernels.testing import (
    CONTRACTS,
    DTYPES,
    BadInput,
    OpContract,
    OpRecorder,
    assert_close,
    check_error_type,
    dense_strides,
    direct_op,
    dispatch_keyset,
    is_dense,
    large_shapes_for,
    make,
    op_qualname,
    ops_run,
    sample_inputs,
    triton_interpreted,
)

OPS = tuple(CONTRACTS)
DIFFERENTIABLE = tuple(name for name, c in CONTRACTS.items() if c.differentiable)
UPSTREAM_SCALAR = 0.7  # an upstream gradient other than 1 catches a backward that ignores it


# --- helpers ------------------------------------------------------------------------------------


def as_tuple(result) -> tuple:
    return result if isinstance(result, tuple) else (result,)


def tensors_in(args) -> list[torch.Tensor]:
    """The tensors among `args`, those inside a list (clip_'s params) included."""
    found = []
    for a in args:
        if isinstance(a, torch.Tensor):
            found.append(a)
        elif isinstance(a, (list, tuple)):
            found.extend(t for t in a if isinstance(t, torch.Tensor))
    return found


def grad_inputs(args) -> list[int]:
    """Where the differentiated arguments are: the tensors that require grad."""
    return [i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.requires_grad]


def float64_copy(a):
    """The oracle's input: the same (rounded) values in float64, a leaf if `a` requires grad."""
    if isinstance(a, torch.Tensor) and a.is_floating_point():
        return a.detach().to(torch.float64).requires_grad_(a.requires_grad)
    return a


def fresh(a):
    """A new leaf or clone of an argument, so two runs never share an autograd graph or memory."""
    if isinstance(a, torch.Tensor):
        return a.detach().clone().requires_grad_(a.requires_grad)
    if isinstance(a, (list, tuple)):
        return type(a)(fresh(t) for t in a)
    return a


def upstreams(outs, seed: int) -> list[torch.Tensor]:
    return [
        torch.tensor(UPSTREAM_SCALAR, dtype=o.dtype, device=o.device)
        if o.dim() == 0
        else make(o.shape, o.dtype, o.device, seed=seed + k, scale=3.0)
        for k, o in enumerate(outs)
    ]


def upstream_sets(n_outputs: int) -> list[list[int]]:
    """Which outputs get an upstream gradient: all of them, and the first alone (norm_penalty's
    backward then gets no gradient of the norms, a path of its own)."""
    return [list(range(n_outputs))] + ([[0]] if n_outputs > 1 else [])


def grads(outs, inputs, ups, which) -> tuple:
    # An input that an output does not read (real_out of most generator losses) gets zeros.
    return torch.autograd.grad(
        [outs[k] for k in which],
        inputs,
        [ups[k] for k in which],
        retain_graph=True,
        allow_unused=True,
        materialize_grads=True,
    )


def samples(contract: OpContract, device, dtype):
    return sample_inputs(
        contract.name,
        device,
        dtype,
        requires_grad=contract.differentiable,
        shapes=contract.sweep_shapes,
    )


# --- 1. the reference's values ------------------------------------------------------------------


def check_differentiable(contract: OpContract, backend, args, label: str, seed: int) -> None:
    """Outputs (values, dtype, device, layout) and the gradients of every differentiated input.

    The oracle is the reference evaluated in float64 on the same (rounded) inputs and rounded to
    the result's dtype: a float32 reference of a sum of 10^5 terms would itself drift by more
    than float32's tolerance. The result's dtype is the reference's on the inputs as given."""
    at = grad_inputs(args)
    with OpRecorder() as rec:
        got = as_tuple(contract.public(*args, impl=backend))
        ups = upstreams(got, seed)
        got_grads = [
            grads(got, [args[i] for i in at], ups, which) for which in upstream_sets(len(got))
        ]
    for op in (contract.name, f"{contract.name}_backward"):
        assert rec.ran(op, backend), f"{label}: {op_qualname(op, backend)} did not run: {rec.names}"

    args64 = [float64_copy(a) for a in args]
    want = as_tuple(contract.reference(*args64))
    with torch.no_grad():
        dtypes = [w.dtype for w in as_tuple(contract.reference(*args))]
    first = tensors_in(args)[0]
    for k, (o, w, dtype) in enumerate(zip(got, want, dtypes, strict=True)):
        assert o.dtype == dtype and o.device == first.device, (
            f"{label}: output {k} is {o.dtype} on {o.device}, expected {dtype} on {first.device}"
        )
        assert_close(o, w.to(dtype), dtype, label=f"{label} output {k}")
        if o.shape == first.shape and is_dense(first):
            assert dense_strides(o) == dense_strides(first), f"{label}: output layout {o.stride()}"

    for which, got_g in zip(upstream_sets(len(got)), got_grads, strict=True):
        want_g = grads(want, [args64[i] for i in at], [u.double() for u in ups], which)
        for i, g, w in zip(at, got_g, want_g, strict=True):
            t = args[i]
            where = f"{label} grad of argument {i} (upstream of outputs {which})"
            assert g.dtype == t.dtype and g.shape == t.shape, f"{where}: {g.dtype} {g.shape}"
            assert_close(g, w.to(t.dtype), t.dtype, label=where)


def check_in_place(contract: OpContract, backend, args, label: str) -> None:
    """Updates a copy with the backend and a copy with the reference: the same values in the
    tensors passed (bit for bit for clip_, a selection that keeps NaN; within the dtype's
    tolerance for ema_'s arithmetic), and the same result (clip_'s count; ema_ returns None)."""
    params, *rest = args
    ours, theirs = fresh(params), fresh(params)
    with OpRecorder() as rec:
        result = contract.public(ours, *rest, impl=backend)
    assert rec.ran(contract.name, backend), f"{label}: the backend's op did not run: {rec.names}"
    want = contract.reference(theirs, *rest)
    if want is None:
        assert result is None, f"{label}: returned {result!r}, expected None"
    else:
        assert result.dtype == torch.int64 and result.dim() == 0, result
        assert result.device == params[0].device
        assert int(result) == int(want), f"{label}: count {int(result)} != reference {int(want)}"
    for i, (o, t) in enumerate(zip(ours, theirs, strict=True)):
        assert o.dtype == t.dtype
        where = f"{label} [{i}]"
        if contract.exact:
            torch.testing.assert_close(
                o, t, rtol=0, atol=0, equal_nan=True, msg=lambda m, w=where: f"{w}: {m}"
            )
        else:
            assert_close(o, t, o.dtype, label=where, equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", OPS)
def test_matches_reference(name, backend, device, dtype):
    contract = CONTRACTS[name]
    n = 0
    for n, (label, args, kwargs) in enumerate(samples(contract, device, dtype), 1):
        assert not kwargs
        label = f"{name} {backend} {dtype} {label}"
        if contract.differentiable:
            check_differentiable(contract, backend, args, label, seed=n)
        else:
            check_in_place(contract, backend, args, label)
    assert n > 0


# --- 2. registration: opcheck and torch.compile -------------------------------------------------

CHEAP_OPCHECK = ("test_schema", "test_autograd_registration", "test_faketensor")


def opcheck(op, args, label: str, test_utils=None) -> None:
    kwargs = {} if test_utils is None else {"test_utils": test_utils}
    try:
        torch.library.opcheck(op, args, **kwargs)
    except Exception as exc:  # name the case: opcheck's own message does not
        raise AssertionError(f"opcheck failed for {label}: {exc}") from exc


@pytest.mark.parametrize("name", OPS)
def test_opcheck(name, backend, device):
    """The backend's op on every sample of every dtype (all of opcheck on the contract's chosen
    samples and each dtype's first, the cheaper tests on the others), the fake kernel on the
    large shapes the sweep leaves out, and the backward op in every dtype (all of opcheck in
    float32 and on each dtype's first sample)."""
    contract = CONTRACTS[name]
    forward = backend_op(name, backend)
    thorough = 0
    for dtype in DTYPES:
        for i, (label, args, _) in enumerate(samples(contract, device, dtype)):
            # The first sample of each dtype too: a dtype-specific schema or dispatch problem.
            full = i == 0 or contract.thorough_opcheck(dtype, i, label)
            thorough += full
            opcheck(forward, args, f"{dtype} {label}", None if full else CHEAP_OPCHECK)
    assert thorough > 0, "no sample got all of opcheck"
    if contract.sweep_shapes is not None:
        shapes = large_shapes_for(backend)
        for label, args, _ in sample_inputs(name, device, torch.float32, shapes=shapes):
            opcheck(forward, args, label, ("test_faketensor",))
    if contract.differentiable:
        backward = direct_op(f"{name}_backward", backend)
        for dtype in DTYPES:
            for i, args in enumerate(contract.backward_samples(device, dtype)):
                full = dtype == torch.float32 or i == 0
                utils = None if full else CHEAP_OPCHECK
                opcheck(backward, args, f"{name}_backward {dtype} #{i}", utils)


@pytest.mark.parametrize("name", OPS)
def test_compile_fullgraph(name, backend, device):
    """A function calling the op compiles with no graph break, and its values, gradients and
    in-place writes match eager."""
    contract = CONTRACTS[name]
    torch._dynamo.reset()
    step, args = contract.compile_case(device, backend)
    eager_args = fresh(args)
    got = as_tuple(torch.compile(step, fullgraph=True)(*args))
    want = as_tuple(step(*eager_args))
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.dtype == w.dtype
        if g.is_floating_point():
            assert_close(g, w, label=f"compiled output {k}")
        else:
            assert torch.equal(g, w), f"compiled output {k}: {g} != {w}"
    if contract.differentiable:
        at = grad_inputs(args)
        got_g = torch.autograd.grad(got[0], [args[i] for i in at])
        want_g = torch.autograd.grad(want[0], [eager_args[i] for i in at])
        for i, g, w in zip(at, got_g, want_g, strict=True):
            assert_close(g, w, label=f"compiled grad of argument {i}")
    for i, (t, e) in enumerate(zip(tensors_in(args), tensors_in(eager_args), strict=True)):
        assert torch.equal(t.detach(), e.detach()), f"compiled: tensor {i} written differently"


# --- 3. gradcheck -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_gradcheck_and_gradgradcheck(name, backend, device):
    contract = CONTRACTS[name]
    cases = list(contract.gradcheck_samples(device))
    assert cases
    for label, args in cases:
        at = grad_inputs(args)

        def fn(*inputs, args=args, at=at):
            call = list(args)
            for i, x in zip(at, inputs, strict=True):
                call[i] = x
            return contract.public(*call, impl=backend)

        inputs = tuple(args[i] for i in at)
        try:
            assert torch.autograd.gradcheck(fn, inputs)
            assert torch.autograd.gradgradcheck(fn, inputs)
        except Exception as exc:
            raise AssertionError(f"{name} {backend} {label}: {exc}") from exc


# --- 4. bad input -------------------------------------------------------------------------------


def case_ids(kind: str, public_only: bool = True) -> list:
    """(op, case label) of every bad input: the labels come from a CPU build of the lists, the
    cases themselves are rebuilt on the test's device."""
    return [
        pytest.param(name, bad.label, id=f"{name}-{bad.label}")
        for name, contract in CONTRACTS.items()
        for bad in getattr(contract, kind)("cpu")
        if public_only or not bad.public_only
    ]


def find(cases: list[BadInput], label: str) -> BadInput:
    (bad,) = [b for b in cases if b.label == label]
    return bad


def expect_refusal(call, bad: BadInput, op: str) -> None:
    """`call()` raises exactly `bad.error`, its message matches and names the op and the
    argument, and no tensor was written."""
    before = [(t, t.detach().clone()) for t in tensors_in(bad.args) if t.device.type != "meta"]
    with pytest.raises(bad.error, match=bad.match) as info:
        call()
    assert info.type is bad.error, f"{info.type.__name__}, expected {bad.error.__name__}"
    message = str(info.value)
    assert op in message, f"the message does not name {op}: {message}"
    assert re.search(rf"(?<!\w){re.escape(bad.arg)}(?!\w)", message), (
        f"the message does not name the argument {bad.arg}: {message}"
    )
    for t, copy in before:
        torch.testing.assert_close(t.detach(), copy, rtol=0, atol=0, equal_nan=True)


def call_directly(op, bad: BadInput, device: str):
    if bad.other_device:
        # Sent to the backend's own key: the meta tensor must not route the call to a meta kernel.
        return op.default.redispatch(dispatch_keyset(device), *bad.args)
    return op(*bad.args)


@pytest.mark.parametrize("name,label", case_ids("bad_inputs"))
def test_bad_input_public(name, label, backend, device):
    contract = CONTRACTS[name]
    bad = find(contract.bad_inputs(device), label)
    # The case's type is the Python check's own, which the compiled kernels must raise too.
    assert check_error_type(contract.check, *contract.check_args(bad.args)) is bad.error
    expect_refusal(lambda: contract.public(*bad.args, impl=backend), bad, f"{name}: ")


@pytest.mark.parametrize("name,label", case_ids("bad_inputs", public_only=False))
def test_bad_input_op(name, label, backend, device):
    """The op called directly (torch.ops.gankernels.<name>, or <name>_triton): the compiled
    kernels' C++ checks, and the Triton ops' own, give the same type and message as the Python
    check."""
    contract = CONTRACTS[name]
    bad = find(contract.bad_inputs(device), label)
    op = backend_op(name, backend)
    expect_refusal(lambda: call_directly(op, bad, device), bad, f"{name}: ")


@pytest.mark.parametrize("name,label", case_ids("bad_backward_inputs"))
def test_bad_input_backward_op(name, label, backend, device):
    bad = find(CONTRACTS[name].bad_backward_inputs(device), label)
    backend_op(name, backend)  # defines the Triton backward op on first use
    op = direct_op(f"{name}_backward", backend)
    expect_refusal(lambda: call_directly(op, bad, device), bad, name)


@pytest.mark.parametrize("name", OPS)
def test_unknown_impl_is_refused(name):
    contract = CONTRACTS[name]
    _, args, _ = next(samples(contract, "cpu", torch.float32))
    with pytest.raises(ValueError, match=r"impl must be one of"):
        contract.public(*args, impl="fast")
    with pytest.raises(ValueError, match=r"impl='cuda' runs on CUDA tensors"):
        contract.public(*args, impl="cuda")


# --- 5. determinism -----------------------------------------------------------------------------


def run_once(contract: OpContract, backend: str, args) -> list[torch.Tensor]:
    """Every result of one call: outputs and gradients (for each upstream set), or the count and
    the clamped tensors."""
    args = fresh(args)
    if not contract.differentiable:
        result = contract.public(*args, impl=backend)
        return [r for r in (result,) if r is not None] + tensors_in(args[:1])
    outs = as_tuple(contract.public(*args, impl=backend))
    ups = upstreams(outs, seed=0)
    at = [args[i] for i in grad_inputs(args)]
    results = [o.detach() for o in outs]
    for which in upstream_sets(len(outs)):
        results.extend(grads(outs, at, ups, which))
    return results


@pytest.mark.parametrize("name", OPS)
def test_deterministic(name, backend, device):
    """Bitwise the same results on a second run; for the CPU kernels (fixed reduction blocks,
    partials added in a fixed order) also on 1, 2 and 3 threads. Samples of more than 2^16
    elements (fewer under the Triton interpreter), so that reductions span several blocks."""
    contract = CONTRACTS[name]
    args = contract.large_args(device, triton_interpreted(backend))
    first = run_once(contract, backend, args)
    # ... and right, at this size too.
    if contract.differentiable:
        want = as_tuple(contract.reference(*[float64_copy(a) for a in args]))
        for k, (o, w) in enumerate(zip(first[: len(want)], want, strict=True)):
            assert_close(o, w.to(o.dtype), o.dtype, label=f"large output {k}")
    else:
        check_in_place(contract, backend, args, "large")
    threads = torch.get_num_threads()
    try:
        for n in (1, 2, 3) if backend == "cpu" else (threads,):
            torch.set_num_threads(n)
            again = run_once(contract, backend, args)
            for k, (a, b) in enumerate(zip(first, again, strict=True)):
                assert torch.equal(a, b), f"result {k} differs on a run with {n} threads"
    finally:
        torch.set_num_threads(threads)


# --- 6. which backend ran -----------------------------------------------------------------------


@pytest.mark.parametrize("name", OPS)
def test_named_backend_ran(name, backend, device):
    """The backend's forward and backward ops, and no other gankernels op, are in a profiler
    trace of one step; the compiled ops have a kernel for their device's dispatch key."""
    contract = CONTRACTS[name]
    _, args, _ = next(samples(contract, device, torch.float32))
    args = fresh(args)

    def step():
        outs = as_tuple(contract.public(*args, impl=backend))
        if contract.differentiable:
            torch.autograd.backward(outs, [torch.ones_like(o) for o in outs])

    ops = [name] + ([f"{name}_backward"] if contract.differentiable else [])
    want = {op_qualname(op, backend) for op in ops}
    names = ops_run(step)
    assert names == want, f"{backend}: ran {sorted(names)}, expected {sorted(want)}"
    if backend in ("cpu", "cuda"):
        for op in ops:
            key = backend.upper()
            assert torch._C._dispatch_has_kernel_for_dispatch_key(f"gankernels::{op}", key)
