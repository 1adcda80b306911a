"""Inputs and tolerances shared by the tests (tests/) and the benchmarks (bench/).

`sample_inputs(op, device, dtype)` yields (label, args, kwargs) cases in the order of the op's
Python signature; `tolerance(dtype)` is the comparison tolerance against the reference.
"""

from __future__ import annotations

from typing import Iterator, Optional, Sequence

import torch

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

        for shape in shapes or OUTPUT_SHAPES:
            for kind in LOSS_KINDS:
                for role in ROLES:
                    seed += 1
                    real = make(shape, dtype, device, seed=seed, requires_grad=requires_grad)
                    fake = make(shape, dtype, device, seed=seed + 1000, requires_grad=requires_grad)
                    params = (-1.0, 1.0, 0.0, False)
                    if kind == "least_squares":
                        params = (0.0, 1.0, 1.0, False) if seed % 2 else params
                    yield f"{list(shape)}-{kind}-{role}", (real, fake, kind, role, *params), {}
                    if role == "generator" and kind != "relativistic":
                        ns = kind not in (
                            "minimax",
                            "nonsaturating",
                            "wasserstein",
                            "hinge",
                            "least_squares",
                        )
                        yield (
                            f"{list(shape)}-{kind}-{role}-noreal-ns{ns}",
                            (None, fake, kind, role, *params[:3], ns),
                            {},
                        )
    elif op == "clip_":
        for sizes in ((1,), (7, 300), (4096, 1, 33), (64 * 3 * 4 * 4, 64, 128 * 64 * 4 * 4, 128)):
            seed += 1
            params = [
                make((n,), dtype, device, seed=seed + i, scale=0.02) for i, n in enumerate(sizes)
            ]
            yield f"sizes{list(sizes)}", (params, 0.01), {}
    else:
        raise ValueError(f"unknown op {op!r}")


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
