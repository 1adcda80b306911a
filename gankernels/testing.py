"""Inputs and tolerances shared by the tests (tests/) and the benchmarks (bench/).

`sample_inputs(op, device, dtype)` yields (label, args, kwargs) cases in the order of the op's
Python signature; `tolerance(dtype)` is the comparison tolerance against the reference.
`CONTRACTS` describes, per op, what tests/test_op_contract.py holds every backend to, and
`OpRecorder` tells which backend's ops ran.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from . import reference

DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)

# (rtol, atol) of a fused kernel against the reference, which also accumulates in float32.
TOLERANCES = {
    torch.float64: (1e-10, 1e-12),
    torch.float32: (1e-5, 1e-6),
    torch.float16: (2e-3, 1e-3),
    torch.bfloat16: (1.6e-2, 1e-2),
}

# Shapes that catch indexing mistakes: one sample, one element, odd sizes, a sample of more
# than 2^16 elements, and an image batch.
IMAGE_SHAPES = ((1, 1), (1, 7), (3, 5), (2, 41, 401, 3), (2, 3, 8, 8), (5, 70001), (4, 3, 17, 9))
OUTPUT_SHAPES = ((1,), (7,), (64,), (41, 1), (256,), (3, 401))


def tolerance(dtype: torch.dtype) -> tuple[float, float]:
    return TOLERANCES[dtype]


def make(
    shape: Sequence[int],
    dtype: torch.dtype,
    device,
    *,
    seed: int,
    scale: float = 1.0,
    layout: str = "contiguous",
    requires_grad: bool = False,
) -> torch.Tensor:
    """A seeded random tensor in one of the layouts the kernels must all accept:
    "contiguous", "channels_last" (4-D only), "noncontiguous" (a strided slice), "expanded"
    (stride 0 in the trailing dim, as a sum's gradient is)."""
    gen = torch.Generator().manual_seed(seed)
    full = list(shape)
    if layout == "noncontiguous":
        full[-1] *= 2
    t = (torch.randn(full, generator=gen, dtype=torch.float64) * scale).to(dtype)
    if layout == "noncontiguous":
        t = t[..., ::2]
    elif layout == "channels_last":
        t = t.contiguous(memory_format=torch.channels_last)
    elif layout == "expanded":
        t = t[..., :1].expand(*shape)
    t = t.to(device)
    return t.requires_grad_(requires_grad)


def layouts(shape: Sequence[int]) -> tuple[str, ...]:
    found = ["contiguous", "noncontiguous", "expanded"]
    if len(shape) == 4:
        found.append("channels_last")
    return tuple(found)


def sample_inputs(
    op: str,
    device="cpu",
    dtype: torch.dtype = torch.float32,
    requires_grad: bool = False,
    shapes: Optional[Sequence[Sequence[int]]] = None,
) -> Iterator[tuple]:
    """(label, args, kwargs) for `op` over odd shapes and layouts, seeded and repeatable."""
    seed = 0
    if op == "gp_interpolate":
        for shape in shapes or IMAGE_SHAPES:
            for layout in layouts(shape):
                seed += 1
                real = make(
                    shape, dtype, device, seed=seed, layout=layout, requires_grad=requires_grad
                )
                fake = make(shape, dtype, device, seed=seed + 1000, requires_grad=requires_grad)
                gen = torch.Generator().manual_seed(seed)
                eps = torch.rand(shape[0], generator=gen, dtype=torch.float64).to(dtype)
                eps = eps.to(device).requires_grad_(requires_grad)
                yield f"{list(shape)}-{layout}", (real, fake, eps), {}
    elif op == "norm_penalty":
        for shape in shapes or IMAGE_SHAPES:
            for layout in layouts(shape):
                for target, weight, one_sided, inv_scale in (
                    (1.0, 10.0, False, 1.0),
                    (1.0, 10.0, True, 1.0),
                    (0.0, 5.0, False, 1.0),
                    (1.0, 10.0, False, 1 / 1024),
                ):
                    seed += 1
                    scale = 1024.0 if inv_scale != 1.0 else 1.0
                    grad = make(
                        shape,
                        dtype,
                        device,
                        seed=seed,
                        scale=scale / shape[-1] ** 0.5,
                        layout=layout,
                        requires_grad=requires_grad,
                    )
                    label = f"{list(shape)}-{layout}-K{target}-w{weight}-os{one_sided}-s{inv_scale}"
                    yield label, (grad, target, weight, one_sided, inv_scale), {}
    elif op == "adversarial_loss":
        from .reference import LOSS_KINDS, ROLES

        # The op's 13 arguments; label smoothing (minimax critics), margins (hinge), weights of
        # another dtype and the three reductions vary from sample to sample.
        for shape in shapes or OUTPUT_SHAPES:
            for kind in LOSS_KINDS:
                for role in ROLES:
                    seed += 1
                    real = make(shape, dtype, device, seed=seed, requires_grad=requires_grad)
                    fake = make(shape, dtype, device, seed=seed + 1000, requires_grad=requires_grad)
                    labels = (-1.0, 1.0, 0.0)
                    if kind == "least_squares":
                        labels = (0.0, 1.0, 1.0) if seed % 2 else labels
                    smoothing = 0.25 if seed % 2 and kind in ("minimax", "nonsaturating") else 0.0
                    margin = 0.5 if seed % 2 and kind == "hinge" else 1.0
                    reduction = ("mean", "sum", "none")[seed % 3]
                    real_w = fake_w = None
                    if seed % 4 == 1:
                        real_w = make(shape, torch.float64, device, seed=seed + 2000).abs()
                        fake_w = make(shape, torch.float64, device, seed=seed + 3000).abs()
                    tail = (smoothing, margin, real_w, fake_w, reduction)
                    label = f"{list(shape)}-{kind}-{role}-{reduction}-w{real_w is not None}"
                    yield label, (real, fake, kind, role, *labels, False, *tail), {}
                    if role == "generator" and kind != "relativistic":
                        ns = kind not in (
                            "minimax",
                            "nonsaturating",
                            "wasserstein",
                            "hinge",
                            "least_squares",
                        )
                        yield (
                            f"{list(shape)}-{kind}-{role}-noreal-ns{ns}-{reduction}",
                            (
                                None,
                                fake,
                                kind,
                                role,
                                *labels,
                                ns,
                                smoothing,
                                margin,
                                None,
                                fake_w,
                                reduction,
                            ),
                            {},
                        )
    elif op == "clip_":
        for sizes in ((1,), (7, 300), (4096, 1, 33), (64 * 3 * 4 * 4, 64, 128 * 64 * 4 * 4, 128)):
            seed += 1
            params = [
                make((n,), dtype, device, seed=seed + i, scale=0.02) for i, n in enumerate(sizes)
            ]
            yield f"sizes{list(sizes)}", (params, 0.01), {}
    elif op == "ema_":
        sizes_list = ((1,), (7, 300), (4096, 1, 33), (64 * 3 * 4 * 4, 64, 128 * 64 * 4 * 4, 128))
        for sizes, decay in zip(sizes_list, (0.999, 0.5, 0.0, 1.0)):
            seed += 1
            target = [make((n,), dtype, device, seed=seed + i) for i, n in enumerate(sizes)]
            source = [make((n,), dtype, device, seed=seed + 100 + i) for i, n in enumerate(sizes)]
            yield f"sizes{list(sizes)}-decay{decay}", (target, source, decay), {}
    elif op == "mmd2":
        # Batches around the kernels' tiles (8 and 64 rows on the CPU, 32 or 64 in Triton), one
        # to 130 features, the layouts a feature matrix arrives in, both estimators.
        sizes = shapes or MMD_SIZES
        for n, m, d in sizes:
            for layout in ("contiguous", "noncontiguous", "transposed"):
                seed += 1
                unbiased = seed % 2 == 1 and min(n, m) >= 2
                sigmas = MMD_SIGMAS[seed % len(MMD_SIGMAS)]
                x = _features(n, d, dtype, device, seed, layout, requires_grad)
                y = _features(m, d, dtype, device, seed + 1000, "contiguous", requires_grad)
                label = f"{n}x{m}x{d}-{layout}-{'unbiased' if unbiased else 'biased'}-{sigmas}"
                yield label, (x, y, list(sigmas), unbiased), {}
    else:
        raise ValueError(f"unknown op {op!r}")


MMD_SIZES = ((1, 2, 1), (2, 2, 3), (3, 70, 2), (9, 7, 33), (65, 17, 130))
MMD_SIGMAS = ((1.0, 2.0, 4.0, 8.0, 16.0), (0.5,), (0.7, 3.0))


def _features(n, d, dtype, device, seed, layout, requires_grad=False) -> torch.Tensor:
    """[n, d] feature vectors of norm about 1 (so that every bandwidth sees near and far pairs),
    stored contiguous, as a strided slice, or as the transpose of a [d, n] tensor."""
    scale = 1.0 / max(1.0, d**0.5)
    if layout == "transposed":
        t = make((d, n), dtype, device, seed=seed, scale=scale).t()
    else:
        t = make((n, d), dtype, device, seed=seed, scale=scale, layout=layout)
    return t.detach().requires_grad_(requires_grad)


# --- comparison and "which kernel ran" helpers (shared by the op tests) -------------------------


def assert_close(
    actual: torch.Tensor,
    expected: torch.Tensor,
    dtype: Optional[torch.dtype] = None,
    *,
    label: str = "",
    equal_nan: bool = False,
) -> None:
    """Asserts |actual - expected| <= atol + rtol * |expected| elementwise, with the tolerance of
    `dtype` (default: `expected`'s dtype). On failure the message gives the worst element's index,
    both values and how many elements are off. NaN must match NaN when `equal_nan`."""
    rtol, atol = tolerance(dtype if dtype is not None else expected.dtype)
    where = f"{label}: " if label else ""
    assert actual.shape == expected.shape, (
        f"{where}shape {list(actual.shape)} != expected {list(expected.shape)}"
    )
    a = actual.detach().to("cpu", torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    ok = torch.isclose(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan)
    if bool(ok.all()):
        return
    bad = ~ok
    # The worst offender: NaN or inf mismatches first, then the largest difference.
    err = torch.nan_to_num((a - e).abs(), nan=float("inf"), posinf=float("inf"))
    flat = int(torch.argmax(torch.where(bad, err, torch.full_like(err, -1.0))))
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), a.shape))
    raise AssertionError(
        f"{where}{int(bad.sum())} of {a.numel()} elements differ beyond rtol={rtol}, "
        f"atol={atol}; worst at index {index}: got {a[index].item()!r}, expected "
        f"{e[index].item()!r} (|diff| = {err[index].item():.3g})"
    )


def dense_strides(t: torch.Tensor) -> tuple:
    """The strides of the dims of size > 1 (a size-1 dim's stride is arbitrary)."""
    return tuple(s for n, s in zip(t.shape, t.stride()) if n != 1)


def is_dense(t: torch.Tensor) -> bool:
    """Non-overlapping and dense, in any dim order (then empty_like keeps the strides)."""
    expected = 1
    for stride, size in sorted((s, n) for n, s in zip(t.shape, t.stride()) if n != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def op_qualname(name: str, backend: str) -> str:
    """The op that a backend runs for `name` ("gp_interpolate", "norm_penalty_backward", ...), as
    it appears in a profiler trace: gankernels::<name> compiled, gankernels::<name>_triton."""
    return f"gankernels::{name}_triton" if backend == "triton" else f"gankernels::{name}"


def ops_run(fn) -> set[str]:
    """Calls fn() under torch.profiler and returns the names of the gankernels ops that ran."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return {e.key for e in prof.key_averages() if e.key.startswith("gankernels::")}


def triton_interpreted(backend: str) -> bool:
    """True for the Triton backend running under its CPU interpreter (~1000x slower than a GPU,
    so the tests give it smaller shape sets)."""
    import os

    return backend == "triton" and os.environ.get("TRITON_INTERPRET") == "1"


# The per-dtype and per-layout sweeps use the shapes of up to 4096 elements; the large ones
# (41x401x3, > 2^16 elements per sample) run in fewer dtypes. The Triton interpreter runs a kernel
# ~1000x slower than a GPU: there the large tests take one sample of more than 2^16 elements.
SMALL_SHAPES = tuple(s for s in IMAGE_SHAPES if torch.Size(s).numel() <= 4096)
LARGE_SHAPES = tuple(s for s in IMAGE_SHAPES if torch.Size(s).numel() > 4096)
INTERPRETED_LARGE_SHAPES = ((1, 70001),)


def large_shapes_for(backend: str) -> tuple:
    return INTERPRETED_LARGE_SHAPES if triton_interpreted(backend) else LARGE_SHAPES


def direct_op(name: str, backend: str):
    """The op a backend registers for `name` (a forward or a `_backward`), to call directly."""
    return getattr(torch.ops.gankernels, op_qualname(name, backend).split("::")[1])


def dispatch_keyset(device: str) -> torch._C.DispatchKeySet:
    """The key set that sends a direct op call to `device`'s kernel. With a meta tensor standing
    in for a second device, `op.default.redispatch(dispatch_keyset("cpu"), ...)` reaches the CPU
    kernel (whose device check must refuse it) instead of the meta kernel."""
    key = torch._C.DispatchKey.CUDA if device == "cuda" else torch._C.DispatchKey.CPU
    return torch._C.DispatchKeySet(key)


def check_error_type(check, *args) -> type:
    """The exception type the Python argument check (gankernels/ops/_checks.py) raises for
    `args`: what a compiled op must raise for them too (csrc/checks.h)."""
    try:
        check(*args)
    except (ValueError, TypeError) as error:
        return type(error)
    raise AssertionError(f"{check.__name__} accepted the arguments")


# --- which ops ran ------------------------------------------------------------------------------


class OpRecorder(TorchDispatchMode):
    """Records, in call order, the gankernels ops (forward and backward) that reach the dispatcher
    below autograd, by qualname as `op_qualname` spells it ("gankernels::clip__triton").

    The profiler (`ops_run`) answers the same question for one whole step; the recorder is cheap
    enough to wrap every sample of a sweep, so each sample proves that its backend did the work.
    """

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        if name.startswith("gankernels::"):
            self.names.append(name)
        return func(*args, **(kwargs or {}))

    def ran(self, name: str, backend: str) -> bool:
        """Whether `backend`'s op for `name` ("norm_penalty_backward", ...) was called."""
        return op_qualname(name, backend) in self.names


# --- the per-op contract (tests/test_op_contract.py) --------------------------------------------


@dataclass(frozen=True)
class BadInput:
    """A call that every backend must refuse before it touches any data: with `error`, the type
    the Python check raises (csrc/checks.h raises the same), and a message that matches `match`
    and names the argument `arg`."""

    label: str
    args: tuple
    error: type
    match: str
    arg: str
    # A meta tensor stands in for a second device. Called directly, the op is sent to the
    # backend's own dispatch key (`dispatch_keyset`), so that the backend's kernel, not the meta
    # kernel, is the one that must refuse it.
    other_device: bool = False
    # The dispatcher itself refuses some calls before any kernel runs (an empty list gives it no
    # tensor to dispatch on): those are the public function's alone to name.
    public_only: bool = False


@dataclass(frozen=True)
class OpContract:
    """What every backend of one op promises. The sample inputs, dtypes and tolerances are the
    shared ones above; this adds what differs between ops."""

    name: str
    public: Callable  # gankernels.<name>, called with impl=<backend>
    reference: Callable  # gankernels.reference.<name>
    check: Callable  # the Python argument check, whose exception types every backend raises
    check_args: Callable  # the op's arguments -> the check's
    # Differentiable ops have gradients, gradcheck and a `<name>_backward` op; clip_ instead
    # clamps its tensors in place and returns a count.
    differentiable: bool
    # The shapes of the dtype x sample sweep (None: sample_inputs' own). The large shapes left
    # out of it get the fake-kernel check here; their values are test_<op>.py's large samples.
    sweep_shapes: Optional[tuple]
    # (dtype, index, label) -> whether a sample gets all of opcheck. Its AOT-dispatch test is the
    # slow one; the other samples get the schema, fake-kernel and autograd-registration tests.
    thorough_opcheck: Callable
    compile_case: Callable  # (device, backend) -> (step, args) for torch.compile(fullgraph=True)
    large_args: Callable  # (device, interpreted) -> the arguments of the determinism check
    bad_inputs: Callable  # device -> [BadInput], refused by the public function and by the op
    # The in-place ops: whether the updated tensors equal the reference's bit for bit (clip_, a
    # selection) or within the dtype's tolerance (ema_, arithmetic a compiler may contract).
    exact: bool = True
    backward_samples: Callable = lambda device, dtype: iter(())  # the backward op's arguments
    gradcheck_samples: Callable = lambda device: iter(())  # -> (label, float64 arguments)
    bad_backward_inputs: Callable = lambda device: []  # [BadInput] of the backward op


FLOAT_TYPES = "float32, float64, float16 or bfloat16"


def _seeded_rand(n: int, device, seed: int, requires_grad: bool = False) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    t = torch.rand(n, generator=gen, dtype=torch.float64).to(device)
    return t.requires_grad_(requires_grad)


# gp_interpolate


def _gp_backward_samples(device, dtype):
    real, fake, eps = next(sample_inputs("gp_interpolate", device, dtype, shapes=[(3, 2, 5, 4)]))[1]
    grad = make(real.shape, dtype, device, seed=21)
    yield grad, eps, real, fake
    yield grad, eps, None, None  # eps needs no gradient: real and fake are not saved


def _gp_gradcheck_samples(device):
    for shape in ((3, 4), (2, 3, 2, 2), (3, 2, 2)):
        layout = "channels_last" if len(shape) == 4 else "contiguous"
        real = make(shape, torch.float64, device, seed=19, layout=layout, requires_grad=True)
        fake = make(shape, torch.float64, device, seed=20, requires_grad=True)
        eps = _seeded_rand(shape[0], device, seed=len(shape), requires_grad=True)
        yield f"{list(shape)}-{layout}", (real, fake, eps)


def _gp_compile_case(device, backend):
    from .ops import gp_interpolate

    def step(real, fake, eps):
        x_hat = gp_interpolate(real, fake, eps, impl=backend)
        return (x_hat * x_hat).mean()

    real = make((4, 3, 6, 5), torch.float32, device, seed=22, requires_grad=True)
    fake = make((4, 3, 6, 5), torch.float32, device, seed=23, requires_grad=True)
    return step, (real, fake, _seeded_rand(4, device, seed=24).float().requires_grad_())


def _gp_large_args(device, interpreted):
    shape = (2, 20001) if interpreted else (3, 70001)
    real = make(shape, torch.float32, device, seed=24, requires_grad=True)
    fake = make(shape, torch.float32, device, seed=25, requires_grad=True)
    return real, fake, _seeded_rand(shape[0], device, seed=26).float().requires_grad_()


def _gp_bad_inputs(device):
    f32 = dict(dtype=torch.float32, device=device)
    real = torch.randn(4, 3, **f32)
    eps = torch.rand(4, **f32)
    meta = torch.device("meta")
    return [
        BadInput(
            "shape",
            (real, torch.randn(4, 2, **f32), eps),
            ValueError,
            r"fake must have the same shape as real",
            "fake",
        ),
        BadInput(
            "eps_length",
            (real, real, torch.rand(3, **f32)),
            ValueError,
            r"eps must have shape \[B\] = \[4\] \(one value per sample\), got \[3\]",
            "eps",
        ),
        BadInput(
            "eps_2d",
            (real, real, torch.rand(4, 1, **f32)),
            ValueError,
            r"eps must have shape \[B\] = \[4\]",
            "eps",
        ),
        BadInput(
            "int_real",
            (real.to(torch.int32), real, eps),
            TypeError,
            f"real must be {FLOAT_TYPES}",
            "real",
        ),
        BadInput(
            "bool_fake", (real, real > 0, eps), TypeError, f"fake must be {FLOAT_TYPES}", "fake"
        ),
        BadInput(
            "int_eps",
            (real, real, torch.ones(4, dtype=torch.int64, device=device)),
            TypeError,
            f"eps must be {FLOAT_TYPES}",
            "eps",
        ),
        BadInput(
            "dtype",
            (real, real.double(), eps),
            TypeError,
            r"fake must have the same dtype as real",
            "fake",
        ),
        BadInput(
            "empty_batch",
            (torch.randn(0, 3, **f32),) * 2 + (torch.rand(0, **f32),),
            ValueError,
            r"real has an empty batch \(shape \[0, 3\]\); need B >= 1",
            "real",
        ),
        BadInput(
            "zero_dim",
            (real[0, 0], real[0, 0], eps),
            ValueError,
            r"real must have a batch dimension",
            "real",
        ),
        BadInput(
            "fake_device",
            (real, real.to(meta), eps),
            ValueError,
            r"fake must be on the same device as real",
            "fake",
            other_device=True,
        ),
        BadInput(
            "eps_device",
            (real, real, eps.to(meta)),
            ValueError,
            r"eps must be on the same device as real",
            "eps",
            other_device=True,
        ),
    ]


def _gp_bad_backward_inputs(device):
    grad = torch.randn(4, 3, device=device)
    eps = torch.rand(4, device=device)
    other = torch.randn(4, 2, device=device)
    return [
        BadInput(
            "eps_length",
            (grad, torch.rand(5, device=device), None, None),
            ValueError,
            r"eps must have shape \[B\] = \[4\]",
            "eps",
        ),
        BadInput(
            "real_without_fake",
            (grad, eps, grad, None),
            ValueError,
            r"real and fake must both be given",
            "fake",
        ),
        BadInput(
            "real_shape",
            (grad, eps, other, other),
            ValueError,
            r"real must have the same shape as grad",
            "real",
        ),
        BadInput(
            "fake_dtype",
            (grad, eps, grad, grad.double()),
            TypeError,
            r"fake must have the same dtype as grad",
            "fake",
        ),
        BadInput(
            "empty_batch",
            (grad[:0], eps[:0], None, None),
            ValueError,
            r"gp_interpolate_backward: grad has an empty batch",
            "grad",
        ),
        BadInput(
            "int_grad",
            (grad.to(torch.int16), eps, None, None),
            TypeError,
            f"grad must be {FLOAT_TYPES}",
            "grad",
        ),
    ]


# norm_penalty

NORM_PARAMS = (
    (1.0, 10.0, False, 1.0),
    (1.0, 10.0, True, 1.0),
    (0.0, 5.0, False, 1.0),
    (1.0, 10.0, False, 0.5),
)


def _norm_backward_samples(device, dtype):
    grad = make((3, 2, 5, 4), dtype, device, seed=6)
    opmath = reference.opmath_dtype(dtype)
    for params in NORM_PARAMS:
        _, norms = reference.norm_penalty(grad, *params)
        grad_loss = torch.tensor(0.5, dtype=opmath, device=device)
        for grad_norms in (None, make((3,), opmath, device, seed=7)):
            yield (grad_loss, grad_norms, grad, norms, *params)


def _norm_gradcheck_samples(device):
    for shape in ((3, 4), (2, 3, 2, 2)):
        # Rows of norm ~0.4 .. 2.5: away from the one-sided kink at n = target.
        row_scale = torch.tensor([0.3, 1.6, 0.8][: shape[0]], dtype=torch.float64, device=device)
        grad = make(shape, torch.float64, device, seed=5) * row_scale.view(
            -1, *[1] * (len(shape) - 1)
        )
        if len(shape) == 4:
            grad = grad.contiguous(memory_format=torch.channels_last)
        for params in NORM_PARAMS:
            yield f"{list(shape)}-{params}", (grad.detach().requires_grad_(), *params)
    grad = make((3, 2, 2), torch.float64, device, seed=1)
    for target, one_sided, inv_scale in ((1.0, False, 1.0), (1.0, True, 0.5), (0.0, False, 2.0)):
        params = (target, 3.0, one_sided, inv_scale)
        yield f"[3, 2, 2]-{params}", (grad.detach().requires_grad_(), *params)


def _norm_compile_case(device, backend):
    from .ops import norm_penalty

    def step(g):
        loss, norms = norm_penalty(g, 1.0, 10.0, False, 1.0, impl=backend)
        return loss + 0.1 * norms.sum()

    return step, (make((4, 3, 6, 5), torch.float32, device, seed=7, requires_grad=True),)


def _norm_large_args(device, interpreted):
    shape = (2, 20001) if interpreted else (3, 70001)
    return (make(shape, torch.float32, device, seed=8, requires_grad=True), *NORM_PARAMS[0])


def _norm_bad_inputs(device):
    grad = torch.randn(4, 3, device=device)
    ok = NORM_PARAMS[0]
    return [
        BadInput(
            "int_grad",
            (grad.to(torch.int32), *ok),
            TypeError,
            f"grad must be {FLOAT_TYPES}",
            "grad",
        ),
        BadInput("bool_grad", (grad > 0, *ok), TypeError, f"grad must be {FLOAT_TYPES}", "grad"),
        BadInput(
            "empty_batch",
            (grad[:0], *ok),
            ValueError,
            r"grad has an empty batch \(shape \[0, 3\]\)",
            "grad",
        ),
        BadInput(
            "zero_dim", (grad[0, 0], *ok), ValueError, r"grad must have a batch dimension", "grad"
        ),
        BadInput(
            "target",
            (grad, -0.5, 10.0, False, 1.0),
            ValueError,
            r"target must be >= 0, got -0.5",
            "target",
        ),
        BadInput(
            "inv_scale_zero",
            (grad, 1.0, 10.0, False, 0.0),
            ValueError,
            r"inv_scale must be > 0, got 0",
            "inv_scale",
        ),
        BadInput(
            "inv_scale_negative",
            (grad, 1.0, 10.0, False, -2.0),
            ValueError,
            r"inv_scale must be > 0, got -2",
            "inv_scale",
        ),
        BadInput(
            "weight_nan",
            (grad, 1.0, float("nan"), False, 1.0),
            ValueError,
            r"weight must be a number",
            "weight",
        ),
    ]


def _norm_bad_backward_inputs(device):
    grad = torch.randn(4, 3, device=device)
    norms = grad.norm(dim=1)
    gl = torch.tensor(1.0, device=device)
    ok = NORM_PARAMS[0]
    meta = torch.device("meta")
    prefix = "norm_penalty_backward: .*"
    cases = [
        (
            "grad_loss_shape",
            (gl.reshape(1), None, grad, norms),
            ValueError,
            "grad_loss must be a 0-dim tensor",
            "grad_loss",
        ),
        (
            "norms_shape",
            (gl, None, grad, norms[:3]),
            ValueError,
            r"norms must have shape \[B\] = \[4\]",
            "norms",
        ),
        (
            "grad_norms_shape",
            (gl, torch.ones(5, device=device), grad, norms),
            ValueError,
            r"grad_norms must have shape \[B\]",
            "grad_norms",
        ),
        (
            "int_norms",
            (gl, None, grad, norms.long()),
            TypeError,
            f"norms must be {FLOAT_TYPES}, got int64",
            "norms",
        ),
        (
            "int_grad_loss",
            (gl.int(), None, grad, norms),
            TypeError,
            "grad_loss must be float32, float64",
            "grad_loss",
        ),
        (
            "int_grad",
            (gl, None, grad.int(), norms),
            TypeError,
            f"grad must be {FLOAT_TYPES}",
            "grad",
        ),
        (
            "empty_batch",
            (gl, None, grad[:0], norms[:0]),
            ValueError,
            "grad has an empty batch",
            "grad",
        ),
    ]
    bad = [
        BadInput(label, (*args, *ok), error, prefix + match, arg)
        for label, args, error, match, arg in cases
    ]
    bad.append(
        BadInput(
            "target",
            (gl, None, grad, norms, -1.0, 10.0, False, 1.0),
            ValueError,
            prefix + r"target must be >= 0, got -1\.0",
            "target",
        )
    )
    for label, args, arg in (
        ("grad_loss_device", (gl.to(meta), None, grad, norms), "grad_loss"),
        ("norms_device", (gl, None, grad, norms.to(meta)), "norms"),
        ("grad_norms_device", (gl, norms.to(meta), grad, norms), "grad_norms"),
    ):
        match = prefix + f"{re.escape(arg)} must be on the same device as grad"
        bad.append(BadInput(label, (*args, *ok), ValueError, match, arg, other_device=True))
    return bad


# adversarial_loss


def adversarial_variants() -> list[tuple[str, str, bool]]:
    """Every (kind, role, nonsaturating) that defines a distinct loss."""
    from .reference import F_DIVERGENCES, LOSS_KINDS, ROLES

    found = []
    for kind in LOSS_KINDS:
        for role in ROLES:
            found.append((kind, role, False))
            if kind in F_DIVERGENCES and role == "generator":
                found.append((kind, role, True))
    return found


def needs_real(kind: str, role: str) -> bool:
    """Whether adversarial_loss of (kind, role) reads real_out."""
    return role == "critic" or kind == "relativistic"


def _adv_backward_samples(device, dtype):
    grad_loss = torch.tensor(0.5, dtype=reference.opmath_dtype(dtype), device=device)
    for _, args, _ in sample_inputs("adversarial_loss", device, dtype, shapes=((3, 401),)):
        if args[-1] == "none":  # the upstream gradient of per-element losses is per element
            yield (make(args[1].shape, grad_loss.dtype, device, seed=18), *args)
        else:
            yield (grad_loss, *args)


def adversarial_args(
    kind,
    role,
    a=-1.0,
    b=1.0,
    c=0.0,
    nonsaturating=False,
    label_smoothing=0.0,
    margin=1.0,
    real_weights=None,
    fake_weights=None,
    reduction="mean",
) -> tuple:
    """adversarial_loss's arguments after (real_out, fake_out), with the schema's defaults."""
    return (
        kind,
        role,
        a,
        b,
        c,
        nonsaturating,
        label_smoothing,
        margin,
        real_weights,
        fake_weights,
        reduction,
    )


def _adv_gradcheck_samples(device):
    def away_from_kinks(t):  # hinge's, at +-1: finite differences across a kink are off
        return torch.where((t.abs() - 1).abs() < 0.05, t + 0.2, t)

    real = away_from_kinks(make((4,), torch.float64, device, seed=14))
    fake = away_from_kinks(make((3,), torch.float64, device, seed=15))
    for kind, role, ns in adversarial_variants():
        args = adversarial_args(kind, role, 0.3, -0.4, 2.5, ns)
        yield (
            f"{kind}-{role}-ns{ns}",
            (real.detach().requires_grad_(), fake.detach().requires_grad_(), *args),
        )
        if not needs_real(kind, role):
            yield f"{kind}-{role}-ns{ns}-noreal", (None, fake.detach().requires_grad_(), *args)
    # Weights, "sum" and "none" (one shape on both sides), label smoothing and a margin.
    same = away_from_kinks(make((3,), torch.float64, device, seed=19))
    w_real = make((3,), torch.float64, device, seed=20).abs()
    w_fake = make((3,), torch.float64, device, seed=21).abs()
    for kind, role, extra in (
        ("minimax", "critic", {"label_smoothing": 0.25}),
        ("hinge", "critic", {"margin": 0.4}),
        ("jensen_shannon", "critic", {}),
        ("relativistic", "critic", {}),
        ("relativistic", "generator", {}),
        ("reverse_kl", "generator", {}),
    ):
        for reduction in ("sum", "none"):
            args = adversarial_args(
                kind, role, real_weights=w_real, fake_weights=w_fake, reduction=reduction, **extra
            )
            yield (
                f"{kind}-{role}-weighted-{reduction}",
                (real.detach()[:3].clone().requires_grad_(), same.detach().requires_grad_(), *args),
            )
    # Outputs of different sizes and dims, and other labels.
    real = make((3,), torch.float64, device, seed=1)
    fake = make((2, 2), torch.float64, device, seed=2)
    for kind in ("least_squares", "relativistic", "neyman"):
        for role in ("critic", "generator"):
            args = adversarial_args(kind, role, 0.3, 1.7, 0.1)
            yield (
                f"{kind}-{role}-[3]-[2, 2]",
                (real.detach().requires_grad_(), fake.detach().requires_grad_(), *args),
            )


def _adv_compile_case(device, backend):
    from .ops import adversarial_loss

    def step(real, fake):
        d = adversarial_loss(real, fake, "hinge", "critic", impl=backend)
        g = adversarial_loss(None, fake, "kl", "generator", nonsaturating=True, impl=backend)
        r = adversarial_loss(real, fake, "relativistic", "generator", impl=backend)
        return d + 0.5 * g + r

    real = make((64,), torch.float32, device, seed=16, requires_grad=True)
    fake = make((48,), torch.float32, device, seed=17, requires_grad=True)
    return step, (real, fake)


def _adv_large_args(device, interpreted):
    n_real, n_fake = (30_001, 20_003) if interpreted else (300_001, 200_003)
    real = make((n_real,), torch.float32, device, seed=12, requires_grad=True)
    fake = make((n_fake,), torch.float32, device, seed=13, requires_grad=True)
    return real, fake, *adversarial_args("relativistic", "critic")


def _adv_bad_cases(device) -> list[tuple]:
    from .reference import LOSS_KINDS

    v = torch.randn(4, device=device)

    def A(real, fake, kind, role, **params):
        return (real, fake, *adversarial_args(kind, role, **params))

    return [
        (
            "unknown_kind",
            A(v, v, "wgan", "critic"),
            ValueError,
            f"adversarial_loss: unknown kind 'wgan'; expected one of: {', '.join(LOSS_KINDS)}",
            "kind",
        ),
        (
            "unknown_role",
            A(v, v, "hinge", "discriminator"),
            ValueError,
            "role must be one of critic, generator, got 'discriminator'",
            "role",
        ),
        (
            "no_real_critic",
            A(None, v, "hinge", "critic"),
            ValueError,
            "the critic loss of kind 'hinge' needs real_out, got None",
            "real_out",
        ),
        (
            "no_real_relativistic",
            A(None, v, "relativistic", "generator"),
            ValueError,
            "the generator loss of kind 'relativistic' needs real_out",
            "real_out",
        ),
        (
            "mixed_dtypes",
            A(v, v.double(), "hinge", "critic"),
            TypeError,
            "fake_out must have the same dtype as real_out",
            "fake_out",
        ),
        (
            "int_dtype",
            A(v, v.long(), "hinge", "critic"),
            TypeError,
            f"fake_out must be {FLOAT_TYPES}, got",
            "fake_out",
        ),
        (
            "bool_dtype",
            A(v > 0, v, "hinge", "critic"),
            TypeError,
            f"real_out must be {FLOAT_TYPES}, got",
            "real_out",
        ),
        (
            "empty_fake",
            A(v, v[:0], "hinge", "critic"),
            ValueError,
            "fake_out is empty (shape [0]); need B >= 1",
            "fake_out",
        ),
        (
            "empty_real",
            A(v[:0], v, "hinge", "critic"),
            ValueError,
            "real_out is empty (shape [0]); need B >= 1",
            "real_out",
        ),
        (
            "fake_device",
            A(v, v.to("meta"), "hinge", "critic"),
            ValueError,
            "fake_out must be on the same device as real_out",
            "fake_out",
        ),
        (
            "unknown_reduction",
            A(v, v, "hinge", "critic", reduction="avg"),
            ValueError,
            "adversarial_loss: reduction must be one of mean, sum, none, got 'avg'",
            "reduction",
        ),
        (
            "label_smoothing_range",
            A(v, v, "minimax", "critic", label_smoothing=1.5),
            ValueError,
            "adversarial_loss: label_smoothing must be in [0, 1], got 1.5",
            "label_smoothing",
        ),
        (
            "margin_nan",
            A(v, v, "hinge", "critic", margin=float("nan")),
            ValueError,
            "adversarial_loss: margin must be a finite number, got nan",
            "margin",
        ),
        (
            "real_weights_without_real",
            A(None, v, "hinge", "generator", real_weights=v),
            ValueError,
            "adversarial_loss: real_weights given without real_out",
            "real_weights",
        ),
        (
            "weights_shape",
            A(v, v, "hinge", "critic", fake_weights=v[:3]),
            ValueError,
            "adversarial_loss: fake_weights must have the same shape as fake_out [4], got [3]",
            "fake_weights",
        ),
        (
            "weights_dtype",
            A(v, v, "hinge", "critic", real_weights=v.long()),
            TypeError,
            f"adversarial_loss: real_weights must be {FLOAT_TYPES}, got int64",
            "real_weights",
        ),
        (
            "weights_device",
            A(v, v, "hinge", "critic", real_weights=v.to("meta")),
            ValueError,
            "adversarial_loss: real_weights must be on the same device as real_out",
            "real_weights",
        ),
        (
            "none_shapes",
            A(v, v[:3], "relativistic", "generator", reduction="none"),
            ValueError,
            "reduction 'none' adds the real and fake terms elementwise, so real_out and fake_out "
            "must have one shape, got [4] and [3]",
            "real_out",
        ),
    ]


def _adv_bad_inputs(device):
    return [
        BadInput(
            label,
            args,
            error,
            re.escape(match),
            arg,
            other_device="device" in label,
        )
        for label, args, error, match, arg in _adv_bad_cases(device)
    ]


def _adv_bad_backward_inputs(device):
    one = torch.tensor(1.0, device=device)
    v = torch.randn(4, device=device)
    params = adversarial_args("hinge", "critic")
    bad = [
        BadInput(
            label,
            (one, *args),
            error,
            re.escape(match),
            arg,
            other_device="device" in label,
        )
        for label, args, error, match, arg in _adv_bad_cases(device)
    ]
    bad.append(
        BadInput(
            "grad_loss_shape",
            (torch.ones(2, device=device), v, v, *params),
            ValueError,
            re.escape("grad_loss must hold one element"),
            "grad_loss",
        )
    )
    bad.append(
        BadInput(
            "grad_loss_shape_none",
            (one, v, v, *adversarial_args("hinge", "critic", reduction="none")),
            ValueError,
            re.escape("adversarial_loss_backward: grad_loss must have fake_out's shape [4]"),
            "grad_loss",
        )
    )
    bad.append(
        BadInput(
            "grad_loss_device",
            (one.to("meta"), v, v, *params),
            ValueError,
            "grad_loss must be on the same device as fake_out",
            "grad_loss",
            other_device=True,
        )
    )
    return bad


# clip_


def _clip_compile_case(device, backend):
    from .ops import clip_

    def step(params):
        return clip_(params, 0.01, impl=backend)

    return step, ([make((n,), torch.float32, device, seed=n, scale=0.05) for n in (10, 300, 7)],)


def _clip_large_args(device, interpreted):
    n = 30_001 if interpreted else 300_001
    params = [
        make((n,), torch.float32, device, seed=3, scale=0.02),
        make((5,), torch.float16, device, seed=4, scale=0.02),
    ]
    return params, 0.01


def _clip_bad_inputs(device):
    good = torch.randn(3, device=device)
    meta = torch.device("meta")

    def bad_c(label, c, shown):
        # Numbers as Python's repr() writes them, from C++ too (csrc/checks.h py_float).
        return BadInput(
            label,
            ([good], c),
            ValueError,
            re.escape(f"clip_: c must be a positive number, got {shown}"),
            "c",
        )

    return [
        bad_c("zero_c", 0.0, "0"),
        bad_c("negative_c", -0.01, "-0.01"),
        bad_c("tiny_negative_c", -1e-05, "-1e-05"),
        bad_c("huge_negative_c", -1e15, "-1000000000000000.0"),
        bad_c("nan_c", math.nan, "nan"),
        BadInput(
            "int_dtype",
            ([good, torch.ones(3, dtype=torch.int32, device=device)], 0.1),
            TypeError,
            re.escape(f"clip_: params[1] must be {FLOAT_TYPES}, got"),
            "params[1]",
        ),
        BadInput(
            "bool_dtype",
            ([torch.ones(2, dtype=torch.bool, device=device)], 0.1),
            TypeError,
            re.escape(f"clip_: params[0] must be {FLOAT_TYPES}, got"),
            "params[0]",
        ),
        BadInput(
            "overlapping",
            (
                [
                    torch.tensor([5.0, -5.0], device=device),
                    torch.tensor([3.0], device=device).expand(4),
                ],
                1.0,
            ),
            ValueError,
            re.escape("clip_: params[1] has elements that share memory"),
            "params[1]",
        ),
        BadInput(
            "mixed_devices",
            ([good, torch.randn(3, device=meta)], 0.01),
            ValueError,
            r"clip_: every tensor in params must be on one device; "
            r"params\[0\] is on \S+, params\[1\] on meta",
            "params[1]",
            other_device=True,
        ),
        BadInput(
            "empty_list",
            ([], 0.01),
            ValueError,
            re.escape("clip_: params is empty; need at least one"),
            "params",
            public_only=True,
        ),
        BadInput(
            "single_tensor",
            (good, 0.01),
            TypeError,
            "params must be a list of tensors, got a single tensor",
            "params",
            public_only=True,
        ),
    ]


# ema_


def _ema_compile_case(device, backend):
    from .ops import ema_

    def step(target, source):
        ema_(target, source, 0.9, impl=backend)
        return target[0] * 2

    sizes = (10, 300, 7)
    target = [make((n,), torch.float32, device, seed=n) for n in sizes]
    source = [make((n,), torch.float32, device, seed=n + 1) for n in sizes]
    return step, (target, source)


def _ema_large_args(device, interpreted):
    n = 30_001 if interpreted else 300_001
    target = [make((n,), torch.float32, device, seed=5), make((5,), torch.float16, device, seed=6)]
    source = [make((n,), torch.float32, device, seed=7), make((5,), torch.float16, device, seed=8)]
    return target, source, 0.99


def _ema_bad_inputs(device):
    good = torch.randn(3, device=device)
    meta = torch.device("meta")

    def bad(label, target, source, decay, error, match, arg, **kw):
        return BadInput(label, (target, source, decay), error, match, arg, **kw)

    return [
        bad(
            "decay_above_1",
            [good],
            [good],
            1.5,
            ValueError,
            re.escape("ema_: decay must be a number in [0, 1], got 1.5"),
            "decay",
        ),
        bad(
            "decay_nan",
            [good],
            [good],
            math.nan,
            ValueError,
            re.escape("ema_: decay must be a number in [0, 1], got nan"),
            "decay",
        ),
        bad(
            "lengths",
            [good, good],
            [good],
            0.9,
            ValueError,
            re.escape("ema_: target and source must hold the same number of tensors, got 2 and 1"),
            "target",
        ),
        bad(
            "int_dtype",
            [good, torch.ones(3, dtype=torch.int32, device=device)],
            [good, torch.ones(3, dtype=torch.int32, device=device)],
            0.9,
            TypeError,
            re.escape(f"ema_: target[1] must be {FLOAT_TYPES}, got"),
            "target[1]",
        ),
        bad(
            "dtype_mismatch",
            [good],
            [good.double()],
            0.9,
            TypeError,
            re.escape(
                "ema_: source[0] must have the same dtype as target[0] (float32), got float64"
            ),
            "source[0]",
        ),
        bad(
            "shape_mismatch",
            [good],
            [torch.randn(4, device=device)],
            0.9,
            ValueError,
            re.escape("ema_: source[0] must have the same shape as target[0] [3], got [4]"),
            "source[0]",
        ),
        bad(
            "overlapping",
            [torch.tensor([3.0], device=device).expand(4)],
            [torch.randn(4, device=device)],
            0.9,
            ValueError,
            re.escape("ema_: target[0] has elements that share memory"),
            "target[0]",
        ),
        bad(
            "mixed_devices",
            [good, torch.randn(3, device=meta)],
            [good, good],
            0.9,
            ValueError,
            r"ema_: every tensor must be on one device; target\[0\] is on \S+, target\[1\] "
            r"on meta",
            "target[1]",
            other_device=True,
        ),
        bad(
            "source_device",
            [good],
            [torch.randn(3, device=meta)],
            0.9,
            ValueError,
            r"ema_: source\[0\] must be on the same device as target\[0\]",
            "source[0]",
            other_device=True,
        ),
        bad(
            "empty_list",
            [],
            [],
            0.9,
            ValueError,
            re.escape("ema_: target is empty; need at least one tensor"),
            "target",
            public_only=True,
        ),
        bad(
            "single_tensor",
            good,
            good,
            0.9,
            TypeError,
            "ema_: target must be a list of tensors, got a single tensor",
            "target",
            public_only=True,
        ),
    ]


# mmd2


def _mmd2_public(x, y, sigmas, unbiased, *, impl=None):
    """gankernels.mmd2 with the op's argument order."""
    from .ops import mmd2

    estimator = "unbiased" if unbiased else "biased"
    return mmd2(x, y, sigmas=sigmas, estimator=estimator, impl=impl)


def _mmd2_backward_samples(device, dtype):
    x = _features(9, 5, dtype, device, seed=31, layout="contiguous")
    y = _features(12, 5, dtype, device, seed=32, layout="noncontiguous")
    grad = torch.tensor(0.75, dtype=reference.opmath_dtype(dtype), device=device)
    for sigmas, unbiased in (([1.0, 2.0], True), ([0.5], False)):
        yield grad, x, y, sigmas, unbiased


def _mmd2_gradcheck_samples(device):
    for n, m, d, sigmas, unbiased in (
        (3, 4, 2, [1.0, 2.0, 4.0, 8.0, 16.0], True),
        (2, 3, 5, [0.5, 1.5], False),
        (10, 9, 3, [0.8], True),
    ):
        x = _features(n, d, torch.float64, device, seed=n, layout="contiguous", requires_grad=True)
        y = _features(m, d, torch.float64, device, seed=m + 50, layout="transposed")
        yield f"{n}x{m}x{d}-{sigmas}-{unbiased}", (x, y.requires_grad_(), sigmas, unbiased)


def _mmd2_compile_case(device, backend):
    def step(x, y):
        return _mmd2_public(x, y, [1.0, 4.0], True, impl=backend) * 3

    x = _features(20, 6, torch.float32, device, seed=41, layout="contiguous", requires_grad=True)
    y = _features(13, 6, torch.float32, device, seed=42, layout="contiguous", requires_grad=True)
    return step, (x, y)


def _mmd2_large_args(device, interpreted):
    n, d = (150, 40) if interpreted else (700, 70)
    x = _features(n, d, torch.float32, device, seed=43, layout="contiguous", requires_grad=True)
    y = _features(n + 3, d, torch.float32, device, seed=44, layout="contiguous", requires_grad=True)
    return x, y, [1.0, 2.0, 4.0, 8.0, 16.0], True


def _mmd2_bad_cases(device):
    x = torch.randn(5, 3, device=device)
    y = torch.randn(4, 3, device=device)
    s = [1.0, 2.0]
    meta = torch.device("meta")
    return [
        ("int_x", (x.int(), y, s, True), TypeError, f"x must be {FLOAT_TYPES}", "x"),
        ("int_y", (x, y.long(), s, True), TypeError, f"y must be {FLOAT_TYPES}", "y"),
        (
            "dtypes_differ",
            (x, y.double(), s, True),
            TypeError,
            "y must have the same dtype as x (float32), got float64",
            "y",
        ),
        (
            "x_1d",
            (x[0], y, s, True),
            ValueError,
            "x must be 2-D [B, D] (one feature vector per sample), got shape [3]",
            "x",
        ),
        (
            "y_3d",
            (x, y[None], s, True),
            ValueError,
            "y must be 2-D [B', D] (one feature vector per sample), got shape [1, 4, 3]",
            "y",
        ),
        (
            "features_differ",
            (x, y[:, :2], s, True),
            ValueError,
            "y must have as many features as x (D = 3), got shape [4, 2]",
            "y",
        ),
        (
            "no_features",
            (x[:, :0], y[:, :0], s, True),
            ValueError,
            "x must have at least one feature, got shape [5, 0]",
            "x",
        ),
        (
            "empty_x",
            (x[:0], y, s, False),
            ValueError,
            "x has 0 samples; the biased estimate needs at least 1",
            "x",
        ),
        (
            "one_y_unbiased",
            (x, y[:1], s, True),
            ValueError,
            "y has 1 samples; the unbiased estimate needs at least 2",
            "y",
        ),
        ("no_sigmas", (x, y, [], True), ValueError, "sigmas must hold at least one", "sigmas"),
        (
            "sigma_zero",
            (x, y, [1.0, 0.0], True),
            ValueError,
            "sigmas must be finite and > 0, got 0.0",
            "sigmas",
        ),
        (
            "sigma_negative",
            (x, y, [-2.0], True),
            ValueError,
            "sigmas must be finite and > 0, got -2.0",
            "sigmas",
        ),
        (
            "sigma_nan",
            (x, y, [float("nan")], True),
            ValueError,
            "sigmas must be finite and > 0, got nan",
            "sigmas",
        ),
        (
            "y_device",
            (x, y.to(meta), s, True),
            ValueError,
            f"y must be on the same device as x ({x.device}), got meta",
            "y",
        ),
    ]


def _mmd2_bad_inputs(device):
    return [
        BadInput(label, args, error, re.escape(match), arg, other_device="device" in label)
        for label, args, error, match, arg in _mmd2_bad_cases(device)
    ]


def _mmd2_bad_backward_inputs(device):
    grad = torch.tensor(1.0, device=device)
    bad = [
        BadInput(
            label,
            (grad, *args),
            error,
            re.escape("mmd2_backward: " + match),
            arg,
            other_device="device" in label,
        )
        for label, args, error, match, arg in _mmd2_bad_cases(device)
    ]
    x, y = torch.randn(5, 3, device=device), torch.randn(4, 3, device=device)
    bad += [
        BadInput(
            "grad_shape",
            (torch.ones(2, device=device), x, y, [1.0], True),
            ValueError,
            re.escape("grad must be a 0-dim tensor (the gradient of the scalar MMD^2)"),
            "grad",
        ),
        BadInput(
            "grad_dtype",
            (grad.int(), x, y, [1.0], True),
            TypeError,
            re.escape(f"grad must be {FLOAT_TYPES}"),
            "grad",
        ),
        BadInput(
            "grad_device",
            (grad.to("meta"), x, y, [1.0], True),
            ValueError,
            "grad must be on the same device as x",
            "grad",
            other_device=True,
        ),
    ]
    return bad


def _contracts() -> dict[str, OpContract]:
    from . import ops
    from .ops import _checks

    def always(dtype, index, label):
        return True

    return {
        c.name: c
        for c in (
            OpContract(
                name="gp_interpolate",
                public=ops.gp_interpolate,
                reference=reference.gp_interpolate,
                check=_checks.check_gp_interpolate,
                check_args=lambda args: args,
                differentiable=True,
                sweep_shapes=SMALL_SHAPES,
                thorough_opcheck=lambda dtype, index, label: dtype == torch.float32,
                compile_case=_gp_compile_case,
                large_args=_gp_large_args,
                bad_inputs=_gp_bad_inputs,
                backward_samples=_gp_backward_samples,
                gradcheck_samples=_gp_gradcheck_samples,
                bad_backward_inputs=_gp_bad_backward_inputs,
            ),
            OpContract(
                name="norm_penalty",
                public=ops.norm_penalty,
                reference=reference.norm_penalty,
                check=_checks.check_norm_penalty,
                check_args=lambda args: (args[0], args[1], args[2], args[4]),
                differentiable=True,
                sweep_shapes=SMALL_SHAPES,
                # The 4 parameter sets of each (shape, layout) come in a row: one each, rotating.
                thorough_opcheck=lambda dtype, i, label: (
                    dtype == torch.float32 and i % 4 == (i // 4) % 4
                ),
                compile_case=_norm_compile_case,
                large_args=_norm_large_args,
                bad_inputs=_norm_bad_inputs,
                backward_samples=_norm_backward_samples,
                gradcheck_samples=_norm_gradcheck_samples,
                bad_backward_inputs=_norm_bad_backward_inputs,
            ),
            OpContract(
                name="adversarial_loss",
                public=ops.adversarial_loss,
                reference=reference.adversarial_loss,
                check=_checks.check_adversarial_loss,
                check_args=lambda args: (*args[:4], *args[8:13]),
                differentiable=True,
                sweep_shapes=None,
                # Every kind, role and no-real case at one shape: the others take the same paths.
                thorough_opcheck=lambda dtype, i, label: (
                    dtype == torch.float32 and label.startswith("[7]-")
                ),
                compile_case=_adv_compile_case,
                large_args=_adv_large_args,
                bad_inputs=_adv_bad_inputs,
                backward_samples=_adv_backward_samples,
                gradcheck_samples=_adv_gradcheck_samples,
                bad_backward_inputs=_adv_bad_backward_inputs,
            ),
            OpContract(
                name="clip_",
                public=ops.clip_,
                reference=reference.clip_,
                check=_checks.check_clip,
                check_args=lambda args: args,
                differentiable=False,
                sweep_shapes=None,
                thorough_opcheck=always,
                compile_case=_clip_compile_case,
                large_args=_clip_large_args,
                bad_inputs=_clip_bad_inputs,
            ),
            OpContract(
                name="ema_",
                public=ops.ema_,
                reference=reference.ema_,
                check=_checks.check_ema,
                check_args=lambda args: args,
                differentiable=False,
                sweep_shapes=None,
                thorough_opcheck=always,
                compile_case=_ema_compile_case,
                large_args=_ema_large_args,
                bad_inputs=_ema_bad_inputs,
                exact=False,
            ),
            OpContract(
                name="mmd2",
                public=_mmd2_public,
                reference=reference.mmd2,
                check=_checks.check_mmd2,
                check_args=lambda args: args,
                differentiable=True,
                sweep_shapes=None,
                thorough_opcheck=lambda dtype, i, label: dtype == torch.float32 and i % 3 == 0,
                compile_case=_mmd2_compile_case,
                large_args=_mmd2_large_args,
                bad_inputs=_mmd2_bad_inputs,
                backward_samples=_mmd2_backward_samples,
                gradcheck_samples=_mmd2_gradcheck_samples,
                bad_backward_inputs=_mmd2_bad_backward_inputs,
            ),
        )
    }


CONTRACTS: dict[str, OpContract] = _contracts()
