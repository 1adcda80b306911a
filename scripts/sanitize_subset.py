#!/usr/bin/env python3
"""Every compiled gankernels op, once per dtype, on inputs that reach each kernel path, checked
against gankernels.reference: the workload that `scripts/gpu_check.sh sanitize` runs under
compute-sanitizer (memcheck, racecheck and synccheck each run it once).

    python -P scripts/sanitize_subset.py                 # the CUDA kernels (the default)
    python -P scripts/sanitize_subset.py --device cpu    # the CPU kernels: < 1 minute on 2 cores

`-P` keeps the source tree off sys.path, so the installed gankernels (with its compiled _C) is
the one imported. The ops are called directly (torch.ops.gankernels.*), never through the
Python dispatch, for float32, float64, float16 and bfloat16:

- gp_interpolate(_backward) and norm_penalty(_backward): team mode (many small samples) and
  split mode (few samples of 400,001 elements), each also on a view at storage offset 1 (a base
  pointer that is not 16-byte aligned);
- adversarial_loss(_backward): every kind of reference.LOSS_KINDS for both roles, with the two
  outputs together below and above the single-block limit of 8192 elements, plus the
  multi-launch relativistic path on 300,001 outputs;
- clip_: tensors of 65536 - 1, 65536 and 65536 + 1 elements (the largest chunk), empty ones,
  more than 64 tensors and over 2 million elements per call, and one list of mixed dtypes with
  a strided view, over 21 million elements in one tensor and more tensors (over 384) than one
  launch's argument struct holds; inf and NaN in every tensor of more than 10 elements.
- ema_: clip_'s chunk edges, more tensors than one launch takes and a transposed source;
- mmd2(_backward): batches and feature counts off the kernels' 32-wide tiles, both estimators.

Expected values come from gankernels.reference in float64 on the CPU, from the very values the
kernel read; the tolerance is gankernels.testing.TOLERANCES of the input dtype (rtol against each
element, atol against the largest element; sums against the sum of magnitudes). One line per
call: PASS or FAIL, op, dtype, case, the worst error as a fraction of the tolerance. Exits 1 on
any mismatch or error, 2 when the kernels to test are not there.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from typing import Callable, Optional, Sequence

import torch

from gankernels import reference
from gankernels._extension import STATUS
from gankernels.testing import TOLERANCES

DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
OPS = (
    "gp_interpolate",
    "gp_interpolate_backward",
    "norm_penalty",
    "norm_penalty_backward",
    "adversarial_loss",
    "adversarial_loss_backward",
    "clip_",
    "ema_",
    "mmd2",
    "mmd2_backward",
)
# The kernels' limits (csrc/cuda/clip.cu, csrc/cuda/adversarial_loss.cu): clip_'s largest chunk
# and the most tensors and blocks one launch takes (kMaxTensors and kMaxBlocks: 64 and 320 at
# first, 384 and 2560 with CUDA 12.1's larger kernel arguments), and the single-block loss limit.
CLIP_CHUNK = 65536
CLIP_MAX_TENSORS = 384
CLIP_MAX_BLOCKS = 320
LOSS_SMALL = 8192
# (label, shape, storage offset): team mode (small samples) and split mode (few large ones).
SAMPLE_CASES = (
    ("team", (256, 37), 0),
    ("team-unaligned", (256, 37), 1),
    ("split", (3, 400_001), 0),
    ("split-unaligned", (3, 400_001), 1),
)
# (label, real outputs, fake outputs): one block below LOSS_SMALL elements, several above.
LOSS_SIZES = (("single-block", 100, 117), ("multi-block", 5000, 5003))
LOSS_LARGE = ("large", 300_001, 300_018)

Output = tuple  # (name, got, want, magnitude or None, equal_nan)


class Mismatch(AssertionError):
    pass


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def opmath(dtype: torch.dtype) -> torch.dtype:
    return reference.opmath_dtype(dtype)


class Inputs:
    """Seeded inputs: made on the CPU (so the same values on every device), then moved."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.seed = 0

    def randn(
        self, shape: Sequence[int], dtype: torch.dtype, *, scale: float = 1.0, offset: int = 0
    ) -> torch.Tensor:
        """A tensor of `shape`; with `offset`, a view at that storage offset of a larger one."""
        self.seed += 1
        gen = torch.Generator().manual_seed(self.seed)
        n = 1
        for size in shape:
            n *= size
        flat = (torch.randn(n + offset, generator=gen) * scale).to(dtype).to(self.device)
        return flat[offset:].view(*shape)

    def rand(self, shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
        self.seed += 1
        gen = torch.Generator().manual_seed(self.seed)
        return torch.rand(*shape, generator=gen, dtype=torch.float64).to(dtype).to(self.device)

    def scalar(self, value: float, dtype: torch.dtype) -> torch.Tensor:
        return torch.tensor(value, dtype=dtype, device=self.device)


def f64(t: Optional[torch.Tensor], requires_grad: bool = False) -> Optional[torch.Tensor]:
    """The exact values of a device tensor, in float64 on the CPU."""
    if t is None:
        return None
    return t.detach().to("cpu", torch.float64).requires_grad_(requires_grad)


def error_ratio(
    got: torch.Tensor,
    want: torch.Tensor,
    dtype: torch.dtype,
    magnitude: Optional[torch.Tensor] = None,
    equal_nan: bool = False,
) -> float:
    """max |got - want| / (rtol * m + atol * max(m)), m = |want| or the magnitude given (for
    sums: the sum of the terms' magnitudes). <= 1 passes; inf for a NaN or inf mismatch. The
    atol is relative to the largest element, so that outputs of small magnitude are checked
    as closely as large ones."""
    if tuple(got.shape) != tuple(want.shape):
        raise Mismatch(f"shape {list(got.shape)}, expected {list(want.shape)}")
    if got.numel() == 0:
        return 0.0
    # The looser of the inputs' tolerance and the output's: a float32 grad_eps of float64
    # inputs is rounded to float32.
    rtol, atol = max(TOLERANCES[dtype], TOLERANCES.get(got.dtype, (0.0, 0.0)))
    g = got.detach().to("cpu", torch.float64)
    w = want.detach().to("cpu", torch.float64)
    m = w.abs() if magnitude is None else magnitude.detach().to("cpu", torch.float64).abs()
    m = torch.nan_to_num(m, nan=0.0, posinf=0.0)
    top = float(m.max())
    bound = rtol * m + atol * (top if top > 0 else 1.0)
    same = g == w  # covers equal infinities
    if equal_nan:
        same |= g.isnan() & w.isnan()
    diff = torch.nan_to_num((g - w).abs(), nan=float("inf"), posinf=float("inf"))
    diff = torch.where(same, torch.zeros_like(diff), diff)
    return float((diff / bound).max())


# ---- the calls ---------------------------------------------------------------------------------


def gp_interpolate_calls(mk: Inputs, dtype: torch.dtype):
    ops = torch.ops.gankernels
    for label, shape, offset in SAMPLE_CASES:
        real = mk.randn(shape, dtype, offset=offset)
        fake = mk.randn(shape, dtype)
        # Split mode also takes an eps of another dtype than real's (the op allows it).
        eps_dtype = dtype
        if label.startswith("split"):
            eps_dtype = torch.float64 if dtype == torch.float32 else torch.float32
        eps = mk.rand(shape[:1], eps_dtype)

        def forward(real=real, fake=fake, eps=eps) -> list[Output]:
            got = ops.gp_interpolate(real, fake, eps)
            want = reference.gp_interpolate(f64(real), f64(fake), f64(eps))
            check_dtype(got, real.dtype)
            return [("x_hat", got, want, None, False)]

        yield "gp_interpolate", f"{label}-{fmt(shape)}", forward

        grad = mk.randn(shape, dtype, offset=offset)

        def backward(grad=grad, eps=eps, real=real, fake=fake) -> list[Output]:
            gr, gf, ge = ops.gp_interpolate_backward(grad, eps, real, fake)
            r, f, e = f64(real, True), f64(fake, True), f64(eps, True)
            want = torch.autograd.grad(reference.gp_interpolate(r, f, e), (r, f, e), f64(grad))
            check_dtype(gr, grad.dtype)
            check_dtype(gf, grad.dtype)
            check_dtype(ge, eps.dtype)
            terms = (f64(grad) * (f64(real) - f64(fake))).abs()
            magnitude = terms.reshape(terms.shape[0], -1).sum(1)
            return [
                ("grad_real", gr, want[0], None, False),
                ("grad_fake", gf, want[1], None, False),
                ("grad_eps", ge, want[2], magnitude, False),
            ]

        yield "gp_interpolate_backward", f"{label}-{fmt(shape)}", backward

    grad = mk.randn((256, 37), dtype)
    eps = mk.rand((256,), dtype)

    def backward_without_inputs(grad=grad, eps=eps) -> list[Output]:
        gr, gf, ge = ops.gp_interpolate_backward(grad, eps, None, None)
        e = f64(eps)[:, None]
        return [
            ("grad_real", gr, e * f64(grad), None, False),
            ("grad_fake", gf, (1 - e) * f64(grad), None, False),
            ("grad_eps", ge, torch.zeros(256, dtype=torch.float64), None, False),
        ]

    yield "gp_interpolate_backward", "team-no-real-fake-256x37", backward_without_inputs


def norm_penalty_calls(mk: Inputs, dtype: torch.dtype):
    ops = torch.ops.gankernels
    acc = opmath(dtype)
    # (target, weight, one_sided, inv_scale) per case: both penalties and an AMP-style scale.
    settings = {
        "team": (1.0, 10.0, False, 1.0),
        "team-unaligned": (1.0, 10.0, True, 1.0),
        "split": (1.0, 10.0, True, 1.0),
        "split-unaligned": (0.5, 5.0, False, 1 / 1024),
    }
    for label, shape, offset in SAMPLE_CASES:
        target, weight, one_sided, inv_scale = settings[label]
        n = shape[1]
        grad = mk.randn(shape, dtype, offset=offset, scale=1.2 / (inv_scale * n**0.5))
        args = (target, weight, one_sided, inv_scale)
        case = f"{label}-{fmt(shape)}-os{int(one_sided)}-s{inv_scale:g}"

        def forward(grad=grad, args=args) -> list[Output]:
            loss, norms = ops.norm_penalty(grad, *args)
            want_loss, want_norms = reference.norm_penalty(f64(grad), *args)
            check_dtype(loss, acc)
            check_dtype(norms, acc)
            return [
                ("loss", loss, want_loss, None, False),
                ("norms", norms, want_norms, None, False),
            ]

        yield "norm_penalty", case, forward

        batch = shape[0]
        # Upstream gradients that make the input gradient O(1) per element: a small one would
        # pass any check against an absolute tolerance.
        grad_loss = mk.scalar(batch * n**0.5 / weight, acc)
        grad_norms = mk.randn((batch,), acc, scale=n**0.5) if label.startswith("team") else None

        def backward(grad=grad, args=args, grad_loss=grad_loss, grad_norms=grad_norms):
            _, norms = ops.norm_penalty(grad, *args)
            got = ops.norm_penalty_backward(grad_loss, grad_norms, grad, norms, *args)
            leaf = f64(grad, True)
            outputs = reference.norm_penalty(leaf, *args)
            upstream = (
                f64(grad_loss),
                f64(grad_norms)
                if grad_norms is not None
                else torch.zeros(grad.shape[0], dtype=torch.float64),
            )
            want = torch.autograd.grad(outputs, leaf, upstream)[0]
            check_dtype(got, grad.dtype)
            return [("grad", got, want, None, False)]

        yield (
            "norm_penalty_backward",
            case + ("-with-grad-norms" if grad_norms is not None else ""),
            backward,
        )


def adversarial_calls(mk: Inputs, dtype: torch.dtype):
    ops = torch.ops.gankernels
    acc = opmath(dtype)
    cases = []
    for label, n_real, n_fake in LOSS_SIZES:
        for kind in reference.LOSS_KINDS:
            for role in reference.ROLES:
                cases.append((label, n_real, n_fake, kind, role))
    for role in reference.ROLES:
        cases.append((*LOSS_LARGE, "relativistic", role))
    for i, (label, n_real, n_fake, kind, role) in enumerate(cases):
        params = (0.0, 1.0, 1.0) if kind == "least_squares" else (-1.0, 1.0, 0.0)
        ns = role == "generator" and kind in reference.F_DIVERGENCES and label == "multi-block"
        # The generator's loss reads no real outputs except the relativistic one: on the small
        # size it is called without them.
        no_real = role == "generator" and kind != "relativistic" and label == "single-block"
        # Every third case weighted, on one size for both outputs, reduced by "sum" or "none":
        # the kernels then read the coefficient arrays (and "none" writes per element).
        weighted = i % 3 == 1
        if weighted:
            n_real = n_fake
        real = None if no_real else mk.randn((n_real,), dtype)
        fake = mk.randn((n_fake,), dtype, scale=0.8)
        reduction = ("sum", "none")[i % 2] if weighted else "mean"
        real_w = mk.randn((n_real,), torch.float32).abs() if weighted and real is not None else None
        fake_w = mk.randn((n_fake,), torch.float32).abs() if weighted else None
        smoothing = 0.25 if kind == "minimax" else 0.0
        margin = 0.5 if kind == "hinge" else 1.0
        args = (kind, role, *params, ns, smoothing, margin, real_w, fake_w, reduction)
        # The reference runs on the CPU in float64: its weights too.
        ref_args = (*args[:8], f64(real_w), f64(fake_w), reduction)
        total = n_fake + (0 if real is None else n_real)
        case = (
            f"{kind}-{role}-{label}-n{total}-{reduction}"
            + ("-weighted" if weighted else "")
            + ("-ns" if ns else "")
            + ("-no-real" if real is None else "")
        )

        def forward(real=real, fake=fake, args=args, ref_args=ref_args) -> list[Output]:
            got = ops.adversarial_loss(real, fake, *args)
            want = reference.adversarial_loss(f64(real), f64(fake), *ref_args)
            check_dtype(got, acc)
            return [("loss", got, want, want.abs() + 1, False)]

        yield "adversarial_loss", case, forward

        # grad_loss = the output count makes each element's gradient of a mean O(1); a sum's
        # already is.
        grad_loss = mk.scalar(float(max(n_real, n_fake)) if reduction == "mean" else 1.0, acc)
        if reduction == "none":
            grad_loss = mk.randn((n_fake,), acc)

        def backward(
            real=real, fake=fake, args=args, ref_args=ref_args, grad_loss=grad_loss
        ) -> list[Output]:
            gr, gf = ops.adversarial_loss_backward(grad_loss, real, fake, *args)
            r, f = f64(real, True), f64(fake, True)
            loss = reference.adversarial_loss(r, f, *ref_args)
            leaves = (f,) if r is None else (r, f)
            want = torch.autograd.grad(loss, leaves, f64(grad_loss), allow_unused=True)
            want = [w if w is not None else torch.zeros_like(x) for w, x in zip(want, leaves)]
            check_dtype(gf, fake.dtype)
            if real is None:
                if gr.numel() != 0:
                    raise Mismatch(f"grad_real has {gr.numel()} elements without real_out")
                return [("grad_fake", gf, want[0], None, False)]
            check_dtype(gr, real.dtype)
            return [
                ("grad_real", gr, want[0], None, False),
                ("grad_fake", gf, want[1], None, False),
            ]

        yield "adversarial_loss_backward", case, backward


def _clip_list(mk: Inputs, sizes, dtypes) -> list[torch.Tensor]:
    params = []
    for i, size in enumerate(sizes):
        shape = size if isinstance(size, tuple) else (size,)
        p = mk.randn(shape, dtypes[i % len(dtypes)], scale=0.02)
        if p.numel() > 10:
            p.view(-1)[3:6] = torch.tensor([float("inf"), float("-inf"), float("nan")])
        params.append(p)
    return params


def _clip_check(params: list[torch.Tensor], c: float) -> list[Output]:
    expected = [p.detach().cpu().clone() for p in params]
    want_count = reference.clip_(expected, c)
    count = torch.ops.gankernels.clip_(params, c)
    check_dtype(count, torch.int64)
    if count.dim() != 0 or count.device.type != params[0].device.type:
        raise Mismatch(f"count has shape {list(count.shape)} on {count.device}")
    if int(count) != int(want_count):
        raise Mismatch(f"count {int(count)}, expected {int(want_count)}")
    return [(f"params[{i}]", p, e, None, True) for i, (p, e) in enumerate(zip(params, expected))]


def clip_calls(mk: Inputs, dtype: torch.dtype):
    chunk = CLIP_CHUNK
    sizes = [1, chunk - 1, chunk, chunk + 1, 0, (4, 0), 3 * chunk + 7, 2_100_003]
    sizes += [17 + i for i in range(70)]  # more than 64 tensors
    params = _clip_list(mk, sizes, (dtype,))
    total = sum(p.numel() for p in params)
    yield "clip_", f"{len(params)}-tensors-{total}-elements", lambda: _clip_check(params, 0.01)


def clip_mixed_call(mk: Inputs):
    chunk = CLIP_CHUNK
    # A tensor that starts mid-launch and spans more chunks than one launch's blocks.
    big = (CLIP_MAX_BLOCKS + 10) * chunk + 1
    sizes = [chunk + 1, chunk - 1, 5, 0, chunk, big, 3]
    sizes += [9 + i % 50 for i in range(CLIP_MAX_TENSORS + 16)]  # several launches' tensors
    params = _clip_list(mk, sizes, DTYPES)
    strided = mk.randn((64, 8), torch.float32, scale=0.02)[:, ::2]
    params.insert(3, strided)
    total = sum(p.numel() for p in params)
    yield (
        "clip_",
        f"mixed-dtypes-strided-{len(params)}-tensors-{total}-elements",
        lambda: _clip_check(params, 0.01),
    )


def ema_calls(mk: Inputs, dtype: torch.dtype):
    """ema_ over clip_'s chunk edges and more tensors than one launch takes, and one pair whose
    source is transposed (the copy path)."""
    chunk = CLIP_CHUNK
    sizes = [1, chunk - 1, chunk, chunk + 1, 0, 3 * chunk + 7, 2_100_003]
    sizes += [9 + i % 50 for i in range(CLIP_MAX_TENSORS + 16)]
    target = [mk.randn((n,), dtype) for n in sizes]
    source = [mk.randn((n,), dtype) for n in sizes]
    target.append(mk.randn((33, 17), dtype))
    source.append(mk.randn((17, 33), dtype).t())

    def call() -> list[Output]:
        expected = [t.detach().cpu().clone() for t in target]
        reference.ema_(expected, [s.detach().cpu() for s in source], 0.999)
        torch.ops.gankernels.ema_(target, source, 0.999)
        return [
            (f"target[{i}]", t, e, None, False) for i, (t, e) in enumerate(zip(target, expected))
        ]

    total = sum(t.numel() for t in target)
    yield "ema_", f"{len(target)}-tensors-{total}-elements", call


def mmd2_calls(mk: Inputs, dtype: torch.dtype):
    """mmd2 and its backward on batches and features that end inside a 32-wide tile, for both
    estimators (the diagonal skipped, or counted)."""
    ops = torch.ops.gankernels
    acc = opmath(dtype)
    sigmas = [0.5, 1.0, 4.0]
    for n, m, d, unbiased in ((70, 45, 3, True), (100, 33, 130, False)):
        x = mk.randn((n, d), dtype, scale=d**-0.5)
        y = mk.randn((m, d), dtype, scale=d**-0.5)
        case = f"{n}x{m}x{d}-{'unbiased' if unbiased else 'biased'}"

        def forward(x=x, y=y, unbiased=unbiased) -> list[Output]:
            got = ops.mmd2(x, y, sigmas, unbiased)
            check_dtype(got, acc)
            return [("mmd2", got, reference.mmd2(f64(x), f64(y), sigmas, unbiased), None, False)]

        yield "mmd2", case, forward

        # An upstream gradient that makes the inputs' gradients O(1).
        grad = mk.scalar(float(n + m), acc)

        def backward(x=x, y=y, unbiased=unbiased, grad=grad) -> list[Output]:
            gx, gy = ops.mmd2_backward(grad, x, y, sigmas, unbiased)
            a, b = f64(x, True), f64(y, True)
            want = torch.autograd.grad(reference.mmd2(a, b, sigmas, unbiased), [a, b], f64(grad))
            check_dtype(gx, x.dtype)
            check_dtype(gy, y.dtype)
            return [("grad_x", gx, want[0], None, False), ("grad_y", gy, want[1], None, False)]

        yield "mmd2_backward", case, backward


# ---- the runner --------------------------------------------------------------------------------


def fmt(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in shape)


def check_dtype(t: torch.Tensor, dtype: torch.dtype) -> None:
    if t.dtype != dtype:
        raise Mismatch(f"dtype {dtype_name(t.dtype)}, expected {dtype_name(dtype)}")


def run_call(
    op: str,
    dtype_label: str,
    case: str,
    tol_dtype: torch.dtype,
    call: Callable[[], list[Output]],
    device: str,
) -> bool:
    start = time.perf_counter()
    detail = ""
    try:
        outputs = call()
        if device == "cuda":
            torch.cuda.synchronize()  # a kernel fault is reported at its own call
        worst, worst_name = 0.0, ""
        for name, got, want, magnitude, equal_nan in outputs:
            if got.device.type != device:
                raise Mismatch(f"{name} is on {got.device}, expected {device}")
            ratio = error_ratio(got, want, tol_dtype, magnitude, equal_nan)
            if ratio >= worst:
                worst, worst_name = ratio, name
        ok = worst <= 1.0
        detail = f"worst {worst_name} err/tol={worst:.3g}"
    except Exception as exc:  # a wrong shape, dtype or count, or an error from the kernel
        ok = False
        detail = f"{type(exc).__name__}: {exc}".splitlines()[0]
        if not isinstance(exc, Mismatch):
            traceback.print_exc(file=sys.stderr)
    ms = (time.perf_counter() - start) * 1e3
    print(
        f"{'PASS' if ok else 'FAIL'} {op} {dtype_label} {case} {detail} ({ms:.0f} ms)", flush=True
    )
    return ok


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device",
        choices=("cuda", "cpu"),
        default="cuda",
        help="the kernels to run: CUDA (default) or CPU",
    )
    args = parser.parse_args(argv)
    device = args.device
    if not STATUS.loaded:
        print(f"gankernels._C did not load: {STATUS.error}", file=sys.stderr)
        return 2
    if device == "cuda":
        if not torch.cuda.is_available():
            print("--device cuda, but torch sees no CUDA GPU", file=sys.stderr)
            return 2
        if not STATUS.with_cuda:
            print(
                "this build of gankernels._C has no CUDA kernels (rebuild with "
                "GANKERNELS_CUDA=1 pip install --no-build-isolation .)",
                file=sys.stderr,
            )
            return 2
    import gankernels

    print(
        f"# gankernels {gankernels.__file__}, torch {torch.__version__}, device {device}"
        + (f" ({torch.cuda.get_device_name()})" if device == "cuda" else ""),
        flush=True,
    )
    mk = Inputs(device)
    failures = calls = 0
    start = time.perf_counter()
    for dtype in DTYPES:
        for make_calls in (
            gp_interpolate_calls,
            norm_penalty_calls,
            adversarial_calls,
            clip_calls,
            ema_calls,
            mmd2_calls,
        ):
            for op, case, call in make_calls(mk, dtype):
                calls += 1
                # clip_ must be exact: float64's tolerance is far below any rounding step.
                tol = torch.float64 if op == "clip_" else dtype
                failures += not run_call(op, dtype_name(dtype), case, tol, call, device)
    for op, case, call in clip_mixed_call(mk):
        calls += 1
        failures += not run_call(op, "mixed", case, torch.float64, call, device)
    print(f"# {calls} calls, {failures} failed, {time.perf_counter() - start:.1f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
