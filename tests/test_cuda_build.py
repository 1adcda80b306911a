"""The CUDA kernels (csrc/cuda/*.cu): what can be checked on any machine, then GPU-only checks.

Without a GPU: every op has a CUDA registration in the sources; the sources never synchronise
with the host nor include headers that need cuSPARSE; and when this build compiled the CUDA
kernels (_build_info.json "with_cuda"), the CUDA dispatch key has a kernel for every op and the
library holds device code for every architecture of the recorded arch list.

With a GPU: the CUDA-specific edges that the shared per-op suites (tests/test_*.py, `backend`
fixture) do not reach: clip_'s multi-tensor chunk edges, split vs team reductions, unaligned
pointers, the multi-launch relativistic path, bitwise determinism, no host synchronisation and
the kernel-launch counts of issue 4.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gankernels import reference
from gankernels._extension import STATUS

ROOT = Path(__file__).resolve().parents[1]
CUDA_DIR = ROOT / "csrc" / "cuda"
COMPILED_OPS = (
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
# Each .cu file and the kernels it must contain (names as they appear in the device code).
KERNELS = {
    "gp_interpolate.cu": ("gp_interpolate_kernel", "gp_scale_kernel", "gp_backward_kernel"),
    "norm_penalty.cu": ("norm_penalty_kernel", "norm_penalty_backward_kernel"),
    "adversarial_loss.cu": (
        "adversarial_reduce_kernel",
        "adversarial_grad_kernel",
        "adversarial_terms_kernel",
    ),
    "clip.cu": ("clip_kernel",),
    "ema.cu": ("ema_kernel",),
    "mmd2.cu": ("mmd2_pair_sum_kernel", "mmd2_gradient_kernel"),
}
HAS_GPU = torch.cuda.is_available()
needs_gpu = pytest.mark.skipif(
    not HAS_GPU, reason="no CUDA GPU on this machine: the CUDA kernels are compiled, not run"
)


def _sources() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(CUDA_DIR.glob("*.cu*"))}


def _strip_comments(code: str) -> str:
    code = re.sub(r"/\*.*?\*/", "", code, flags=re.S)
    return re.sub(r"//[^\n]*", "", code)


# ---- any machine: the sources ------------------------------------------------------------------


def test_every_op_has_a_cuda_registration_in_the_sources():
    registered = set()
    for name, code in _sources().items():
        code = _strip_comments(code)
        if name.endswith(".cu"):
            assert "TORCH_LIBRARY_IMPL(gankernels, CUDA, m)" in code, name
        registered |= set(re.findall(r'm\.impl\("(\w+)"', code))
    assert registered == set(COMPILED_OPS)


def test_every_kernel_file_defines_its_kernels():
    sources = _sources()
    for name, kernels in KERNELS.items():
        code = _strip_comments(sources[name])
        for kernel in kernels:
            assert re.search(rf"__global__[^;{{]*\b{kernel}\(", code), f"{name}: {kernel}"


SYNCING = (
    r"\.item\s*<",
    r"\.item\s*\(",
    r"\.cpu\s*\(",
    r"cudaDeviceSynchronize",
    r"cudaStreamSynchronize",
    r"cudaMemcpy\s*\(",
    r"\.to\s*\(\s*at::kCPU",
    r"local_scalar_dense",
    r"\.tolist\s*\(",
)


def test_cuda_sources_never_synchronise_with_the_host():
    for name, code in _sources().items():
        code = _strip_comments(code)
        for pattern in SYNCING:
            assert not re.search(pattern, code), f"{name} uses {pattern}: a host synchronisation"


def test_cuda_sources_use_only_c10_cuda_headers_and_no_float_atomics():
    for name, code in _sources().items():
        code = _strip_comments(code)
        assert not re.search(r'#include\s*[<"]ATen/cuda/CUDAContext\.h', code), (
            f"{name}: ATen/cuda/CUDAContext.h needs cuSPARSE headers; use c10/cuda"
        )
        # The only atomics are integer ones (completion counters, clip_'s count).
        for call in re.findall(r"atomicAdd\(([^,]+),", code):
            assert call.strip() in ("counter", "count"), f"{name}: atomicAdd({call}, ...)"
        if name.endswith(".cu"):
            assert "getCurrentCUDAStream" in code, f"{name}: must launch on the current stream"
            assert "CUDAGuard" in code, f"{name}: must set the device guard"


# ---- any machine: the build --------------------------------------------------------------------


def _build_with_cuda() -> bool:
    return bool(STATUS.build_info and STATUS.build_info.get("with_cuda"))


def _require_cuda_build() -> None:
    assert STATUS.loaded, f"gankernels._C did not load: {STATUS.error}"
    if not _build_with_cuda():
        pytest.skip(
            "this build of gankernels._C has no CUDA kernels (built with "
            "GANKERNELS_CUDA=0, or without nvcc); `pip install .` compiles them"
        )


def test_cuda_dispatch_key_has_every_op():
    _require_cuda_build()
    for name in COMPILED_OPS:
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"gankernels::{name}", "CUDA"), name


def _arch_list() -> list[tuple[str, bool]]:
    """[(sm number, with PTX)] from the recorded arch list, e.g. "8.0;9.0+PTX"."""
    archs = []
    for entry in re.split(r"[;\s]+", STATUS.build_info["arch_list"].strip()):
        if entry:
            ptx = entry.endswith("+PTX")
            archs.append((entry.replace("+PTX", "").replace(".", ""), ptx))
    return archs


def test_library_holds_device_code_for_every_recorded_arch():
    _require_cuda_build()
    cuobjdump = _sass_report().find_cuobjdump()
    if cuobjdump is None:
        pytest.skip(
            "cuobjdump not found (CUDA toolkit or triton's bundle): cannot list the device code"
        )
    import gankernels._C as ext

    listing = subprocess.run(
        [cuobjdump, "--list-elf", "--list-ptx", ext.__file__],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listing.returncode == 0, listing.stderr
    for sm, ptx in _arch_list():
        assert f"sm_{sm}" in listing.stdout, f"no SASS for sm_{sm}:\n{listing.stdout}"
        if ptx:
            assert re.search(rf"(compute|sm)_{sm}\.\w*ptx|\.sm_{sm}\.ptx", listing.stdout), (
                f"no PTX for {sm}:\n{listing.stdout}"
            )
    resources = subprocess.run(
        [cuobjdump, "--dump-resource-usage", ext.__file__],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resources.returncode == 0, resources.stderr
    for kernels in KERNELS.values():
        for kernel in kernels:
            assert kernel in resources.stdout, f"{kernel} is not in {ext.__file__}"


def _sass_report():
    path = ROOT / "scripts" / "sass_report.py"
    spec = importlib.util.spec_from_file_location("sass_report", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["sass_report"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_static_gate_flags_what_it_should():
    """The gate's rules on hand-made kernel records: stack, local memory or spills fail a hot
    (non-float64) kernel only; a missing 128-bit load or store fails where one is required."""
    report = _sass_report()
    name, args, dtype = report.describe(
        "x",
        "void gankernels::cuda::(anonymous namespace)::adversarial_reduce_kernel<c10::Half, "
        "(gankernels::cuda::(anonymous namespace)::Stage)1>(gankernels::cuda::LossArgs<c10::Half>)",
    )
    assert (name, args, dtype) == ("adversarial_reduce_kernel", "Half, Loss", "float16")
    name, _, dtype = report.describe(
        "y",
        "void gankernels::cuda::(anonymous namespace)::gp_backward_kernel<double, double>("
        "gankernels::cuda::BackwardPtrs<double, double>, long)",
    )
    assert (name, dtype) == ("gp_backward_kernel", "float64")

    def kernels(**change):
        out = []
        for kernel in report.KERNELS:
            for dt in ("float32", "float64"):
                k = report.Kernel(
                    "s", kernel, dt, dt, load_128=True, store_128=kernel in report.VECTOR_STORES
                )
                if kernel == change.get("name") and dt == change.get("dtype"):
                    for field, value in change.items():
                        if field not in ("name", "dtype"):
                            setattr(k, field, value)
                out.append(k)
        return out

    assert report.violations(kernels()) == []
    assert report.violations(kernels(name="gp_scale_kernel", dtype="float32", stack=8))
    assert report.violations(kernels(name="clip_kernel", dtype="float32", spill_instructions=2))
    assert report.violations(kernels(name="norm_penalty_kernel", dtype="float32", local=4))
    assert report.violations(kernels(name="gp_scale_kernel", dtype="float64", stack=8)) == []
    assert report.violations(
        kernels(name="adversarial_grad_kernel", dtype="float64", load_128=False)
    )
    assert report.violations(
        kernels(name="gp_interpolate_kernel", dtype="float32", store_128=False)
    )
    assert (
        report.violations(kernels(name="norm_penalty_kernel", dtype="float32", store_128=False))
        == []
    )  # a reduction writes scalars
    assert report.violations(kernels()[2:])  # a kernel missing from the library


def test_static_gate_no_spills_and_128_bit_accesses():
    """scripts/sass_report.py over the built library, for each SASS architecture of the recorded
    arch list: no stack, local memory or spill in any float32/float16/bfloat16 kernel, 128-bit
    loads in every kernel and 128-bit stores in every kernel that writes arrays."""
    _require_cuda_build()
    report = _sass_report()
    cuobjdump = report.find_cuobjdump()
    if cuobjdump is None:
        assert not os.environ.get("CI"), "cuobjdump not found: the static gate cannot run in CI"
        pytest.skip("cuobjdump not found (CUDA toolkit or triton's bundle)")
    import gankernels._C as ext

    failures = []
    for sm, _ in _arch_list():
        arch = f"sm_{sm}"
        kernels = report.read_kernels(cuobjdump, ext.__file__, arch)
        assert {k.name for k in kernels} == set(report.KERNELS), arch
        # Every dtype of every kernel is there (clip_ and ema_ have one kernel for all of them).
        for name in report.KERNELS:
            dtypes = {k.dtype for k in kernels if k.name == name}
            if name in report.ALL_DTYPES:
                want = {"all"}
            elif name in report.PAIRWISE:
                want = {"float32", "float64"}
            else:
                want = {"float32", "float64", "float16", "bfloat16"}
            assert dtypes == want, (arch, name, dtypes)
        problems = report.violations(kernels)
        if problems:
            failures.append(report.markdown(kernels, arch, ext.__file__, problems))
    assert not failures, "\n" + "\n".join(failures)


# ---- GPU: CUDA-specific edges ------------------------------------------------------------------


def _ops():
    return torch.ops.gankernels


@needs_gpu
@pytest.mark.parametrize("big", [False, True], ids=["adaptive-chunk", "full-chunk"])
def test_clip_multi_tensor_chunk_edges(big):
    """Sizes at the full 65536-element chunk +- 1, an empty tensor, more tensors than one launch
    holds, mixed dtypes, inf, NaN, bases that are not 16-byte aligned. The chunk size follows
    the list's total (csrc/cuda/launch_plan.h clip_chunk_size): with `big`, a 40 M-element
    tensor makes it the full 65536, so the 65536 +- 1 sizes sit on chunk edges."""
    _require_cuda_build()
    chunk = 65536
    gen = torch.Generator(device="cuda").manual_seed(0)
    sizes = [1, chunk - 1, chunk, chunk + 1, 0, 3 * chunk + 7, (320 if big else 3) * chunk + 5]
    sizes += [17 + i for i in range(450)]  # many small tensors: more than one launch holds
    if big:
        sizes.append(40_000_000)
    dtypes = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
    params = []
    for i, n in enumerate(sizes):
        p = torch.randn(n + i % 3, device="cuda", generator=gen, dtype=torch.float32) * 0.02
        p = p.to(dtypes[i % len(dtypes)])[i % 3 :]  # storage offset 0, 1 or 2: unaligned bases
        if n > 10:
            p[3], p[4], p[5] = float("inf"), float("-inf"), float("nan")
        params.append(p)
    params.append((torch.randn(64, 8, device="cuda", generator=gen) * 0.02)[:, ::2])  # strided
    expected = [p.clone() for p in params]
    want = reference.clip_(expected, 0.01)
    got = _ops().clip_(params, 0.01)
    assert got.device.type == "cuda" and got.dtype == torch.int64 and got.dim() == 0
    assert got.item() == want.item()
    for p, e in zip(params, expected):
        torch.testing.assert_close(p, e, rtol=0, atol=0, equal_nan=True)


@needs_gpu
@pytest.mark.parametrize(
    "shape", [(2, 1_000_003), (40, 200_003), (100_000, 3), (65536, 784), (7, 1001), (300, 300)]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_norm_penalty_split_team_and_unaligned(shape, dtype):
    """Split mode (few large samples, each sample finished by the block of its last chunk), team
    mode (many small samples, or more samples than resident warps), and a base pointer that is
    not 16-byte aligned (a dense view at storage offset 1)."""
    _require_cuda_build()
    b, n = shape
    for offset in (0, 1):
        flat = torch.randn(b * n + offset, device="cuda", dtype=dtype) / n**0.5
        grad = flat[offset:].view(b, n)
        loss, norms = _ops().norm_penalty(grad, 1.0, 10.0, False, 1.0)
        eloss, enorms = reference.norm_penalty(grad, 1.0, 10.0, False, 1.0)
        torch.testing.assert_close(norms, enorms, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(loss, eloss, rtol=1e-4, atol=1e-5)
        gl = torch.tensor(0.5, device="cuda")
        gn = torch.randn(b, device="cuda")
        got = _ops().norm_penalty_backward(gl, gn, grad, norms, 1.0, 10.0, False, 1.0)
        leaf = grad.detach().float().requires_grad_()
        want = torch.autograd.grad(
            reference.norm_penalty(leaf, 1.0, 10.0, False, 1.0), leaf, (gl, gn)
        )[0]
        rtol, atol = (1e-5, 1e-6) if dtype == torch.float32 else (1.6e-2, 1e-2)
        torch.testing.assert_close(got.float(), want, rtol=rtol, atol=atol)


@needs_gpu
@pytest.mark.parametrize("shape", [(3, 400_001), (50_000, 5), (65536, 784), (24, 100_003)])
def test_gp_interpolate_backward_eps_gradient_and_mixed_eps_dtype(shape):
    _require_cuda_build()
    real = torch.randn(shape, device="cuda")
    fake = torch.randn(shape, device="cuda")
    grad = torch.randn(shape, device="cuda")
    eps = torch.rand(shape[0], device="cuda", dtype=torch.float64)  # not real's dtype
    out = _ops().gp_interpolate(real, fake, eps)
    torch.testing.assert_close(out, reference.gp_interpolate(real, fake, eps))
    gr, gf, ge = _ops().gp_interpolate_backward(grad, eps, real, fake)
    e = eps.float()[:, None]
    torch.testing.assert_close(gr, e * grad)
    torch.testing.assert_close(gf, (1 - e) * grad)
    assert ge.dtype == torch.float64
    want = (grad.double() * (real.double() - fake.double())).sum(1)
    torch.testing.assert_close(ge, want, rtol=1e-4, atol=1e-3)


@needs_gpu
@pytest.mark.parametrize("role", ["critic", "generator"])
@pytest.mark.parametrize("n", [100, 300_001])
def test_relativistic_single_and_multi_launch(role, n):
    """Small inputs take the one-block path, large ones the means-first launches."""
    _require_cuda_build()
    real = torch.randn(n, device="cuda", dtype=torch.float64)
    fake = torch.randn(n + 17, device="cuda", dtype=torch.float64) + 0.5
    loss = _ops().adversarial_loss(real, fake, "relativistic", role, -1.0, 1.0, 0.0, False)
    r = real.clone().requires_grad_()
    f = fake.clone().requires_grad_()
    want = reference.adversarial_loss(r, f, "relativistic", role)
    torch.testing.assert_close(loss, want, rtol=1e-10, atol=1e-12)
    gl = torch.tensor(-2.0, device="cuda", dtype=torch.float64)
    gr, gf = _ops().adversarial_loss_backward(
        gl, real, fake, "relativistic", role, -1.0, 1.0, 0.0, False
    )
    wr, wf = torch.autograd.grad(want, (r, f), gl)
    torch.testing.assert_close(gr, wr, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(gf, wf, rtol=1e-9, atol=1e-12)


@needs_gpu
def test_reductions_are_bitwise_deterministic():
    _require_cuda_build()
    grad = torch.randn(3, 2_000_003, device="cuda")
    eps = torch.rand(3, device="cuda")
    out = torch.randn(500_000, device="cuda")
    gl = torch.tensor(1.0, device="cuda")
    first = (
        _ops().norm_penalty(grad, 1.0, 10.0, False, 1.0),
        _ops().gp_interpolate_backward(grad, eps, grad * 2, grad)[2],
        _ops().adversarial_loss(out, out * 0.5, "relativistic", "critic", -1.0, 1.0, 0.0, False),
        _ops().adversarial_loss_backward(
            gl, out, out * 0.5, "relativistic", "critic", -1.0, 1.0, 0.0, False
        ),
    )
    for _ in range(3):
        again = (
            _ops().norm_penalty(grad, 1.0, 10.0, False, 1.0),
            _ops().gp_interpolate_backward(grad, eps, grad * 2, grad)[2],
            _ops().adversarial_loss(
                out, out * 0.5, "relativistic", "critic", -1.0, 1.0, 0.0, False
            ),
            _ops().adversarial_loss_backward(
                gl, out, out * 0.5, "relativistic", "critic", -1.0, 1.0, 0.0, False
            ),
        )
        for a, b in zip(
            torch.utils._pytree.tree_leaves(first), torch.utils._pytree.tree_leaves(again)
        ):
            assert torch.equal(a, b)


def _small_calls():
    """(name, callable) for every forward and backward op on issue 4's small inputs."""
    ops = _ops()
    x = torch.randn(64, 3, 32, 32, device="cuda")
    y = torch.randn(64, 3, 32, 32, device="cuda")
    eps = torch.rand(64, device="cuda")
    v = torch.randn(256, device="cuda")
    w = torch.randn(256, device="cuda")
    gl = torch.tensor(1.0, device="cuda")
    _, norms = ops.norm_penalty(x, 1.0, 10.0, False, 1.0)
    calls = [
        ("gp_interpolate", lambda: ops.gp_interpolate(x, y, eps)),
        ("gp_interpolate_backward", lambda: ops.gp_interpolate_backward(x, eps, x, y)),
        ("norm_penalty", lambda: ops.norm_penalty(x, 1.0, 10.0, False, 1.0)),
        (
            "norm_penalty_backward",
            lambda: ops.norm_penalty_backward(gl, None, x, norms, 1.0, 10.0, False, 1.0),
        ),
        ("clip_", lambda: ops.clip_([x, y, v], 0.01)),
    ]
    for kind in reference.LOSS_KINDS:
        calls.append(
            (
                f"adversarial_loss {kind}",
                lambda k=kind: ops.adversarial_loss(v, w, k, "critic", -1.0, 1.0, 0.0, False),
            )
        )
        calls.append(
            (
                f"adversarial_loss_backward {kind}",
                lambda k=kind: ops.adversarial_loss_backward(
                    gl, v, w, k, "critic", -1.0, 1.0, 0.0, False
                ),
            )
        )
    return calls


@needs_gpu
def test_no_host_synchronisation():
    _require_cuda_build()
    calls = _small_calls()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _, call in calls:
            call()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


@needs_gpu
def test_one_kernel_launch_per_op_on_small_inputs():
    _require_cuda_build()
    from torch.profiler import ProfilerActivity, profile

    for name, call in _small_calls():
        call()  # warm up (allocator, lazy init)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            call()
            torch.cuda.synchronize()
        kernels = [
            e.name
            for e in prof.events()
            if e.device_type == torch.autograd.DeviceType.CUDA
            and not e.name.lower().startswith(("memset", "memcpy"))
        ]
        assert len(kernels) == 1, f"{name}: {kernels}"
