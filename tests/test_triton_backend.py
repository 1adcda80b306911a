"""Triton-specific tests: import laziness, how the ops are defined, the kernels' multi-tile /
multi-program paths, layouts, determinism across tiles, the multi-tensor clip, and a compile of
every kernel for a real GPU target.

tests/test_op_contract.py holds impl="triton" to every op's contract (the reference over every
dtype and sample, opcheck of every Triton op, torch.compile, gradcheck, bad input), and the
per-op suites (tests/test_<op>.py) cover its edge cases. Without a GPU these tests run the
kernels on CPU tensors through the Triton interpreter (TRITON_INTERPRET=1, set by conftest),
with small shapes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from conftest import HAS_GPU

import gankernels
from gankernels import reference
from gankernels.testing import assert_close, make

DEVICE = "cuda" if HAS_GPU else "cpu"
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
NEEDS_GPU = pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU (this machine has none)")


def _run(code: str, env_drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in env_drop}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        env=env,
        timeout=300,
    )


def _tensor(shape, dtype=torch.float64, seed=0, **kw) -> torch.Tensor:
    return make(shape, dtype, DEVICE, seed=seed, **kw)


@pytest.fixture
def small_tiles(monkeypatch):
    """Tiles of 8 elements and few programs per launch, so that tiny
    tensors take the multi-block (partials + second kernel) and multi-iteration paths."""
    from gankernels.triton import _common

    monkeypatch.setattr(_common, "TILE", 8)
    monkeypatch.setattr(_common, "TARGET_PROGRAMS", 8)


# --- import and registration ------------------------------------------------------------------


def test_import_is_lazy():
    """import gankernels (and gankernels.triton) loads no triton and no CUDA driver; the first
    use of one Triton op loads triton and that op's module only."""
    code = (
        "import sys, torch, gankernels, gankernels.triton\n"
        "assert 'triton' not in sys.modules, sorted(m for m in sys.modules if 'triton' in m)\n"
        "assert not torch.cuda.is_initialized(), 'import touched the CUDA driver'\n"
        "gankernels.triton.op('clip_')\n"
        "assert 'triton' in sys.modules and 'gankernels.triton.clip' in sys.modules\n"
        "assert 'gankernels.triton.norm_penalty' not in sys.modules\n"
        "print('ok')\n"
    )
    done = _run(code)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_triton_package_is_a_leaf():
    """gankernels/triton/ imports nothing from the rest of gankernels: its registration (autograd)
    lives in gankernels/ops/, so the two never import each other."""
    import ast
    from pathlib import Path

    import gankernels.triton

    outside = []
    for path in Path(gankernels.triton.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                outside.append(f"{path.name}: from {'.' * node.level}{node.module or ''}")
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                if name.startswith("gankernels") and not name.startswith("gankernels.triton"):
                    outside.append(f"{path.name}: import {name}")
    assert not outside, outside


def test_unknown_op_name_is_a_clear_error():
    from gankernels import triton as gt

    with pytest.raises(ValueError, match="no Triton op 'gp_interp'"):
        gt.op("gp_interp")


def test_definition_mode_matches_interpreter():
    """Compiled: a triton_op (torch.compile traces into the kernels). Interpreted: an opaque
    custom_op, because wrap_triton returns the plain interpreted kernel, which cannot be traced."""
    from gankernels.triton import _common, op

    op("gp_interpolate")
    assert _common.INTERPRETED == INTERPRETED
    from torch._library.triton import get_triton_kernels_for_op

    kernels = get_triton_kernels_for_op("gankernels::gp_interpolate_triton")
    if INTERPRETED:
        assert kernels == []
    else:
        assert {k.fn.__name__ for k in kernels} >= {"_gp_forward_kernel"}


def _all_ops(real, fake, eps, params):
    x_hat = gankernels.gp_interpolate(real, fake, eps, impl="triton")
    penalty, norms = gankernels.norm_penalty(x_hat, 1.0, 10.0, impl="triton")
    loss = gankernels.adversarial_loss(
        real.flatten(1).sum(1), fake.flatten(1).sum(1), "relativistic", "critic", impl="triton"
    )
    count = gankernels.clip_(params, 0.01, impl="triton")
    return penalty + loss + norms.sum(), count


@NEEDS_GPU
def test_torch_compile_inlines_kernels_on_gpu():
    """With compiled Triton, Inductor's generated code launches our kernels itself."""
    from torch._inductor.utils import run_and_get_code

    torch._dynamo.reset()
    x, y = _tensor((8, 64), torch.float32, seed=1), _tensor((8, 64), torch.float32, seed=2)
    eps = torch.rand(8, device=DEVICE)

    def fn(x, y, eps):
        return gankernels.norm_penalty(
            gankernels.gp_interpolate(x, y, eps, impl="triton"), impl="triton"
        )[0]

    out, codes = run_and_get_code(torch.compile(fn, fullgraph=True), x, y, eps)
    code = "\n".join(codes)
    for kernel in ("_gp_forward_kernel", "_sumsq_kernel", "_finish_kernel"):
        assert kernel in code, f"{kernel} is not in Inductor's output"
    assert_close(out, fn(x, y, eps), label="compiled")


# --- kernel paths -----------------------------------------------------------------------------


def test_row_tiling_heuristic():
    from gankernels.triton._common import MAX_GRID_Y, TILE, row_tiling

    for rows, cols in ((1, 1), (3, 5), (100000, 2), (2, 70001), (64, 3 * 64 * 64), (1, 2**31 - 1)):
        rows_per, block_n, iters, nblk = row_tiling(rows, cols)
        assert rows_per * block_n <= max(TILE, 2), (rows, cols)
        assert block_n & (block_n - 1) == 0 and rows_per & (rows_per - 1) == 0
        assert nblk <= MAX_GRID_Y
        assert nblk * iters * block_n >= cols, "the tiles must cover the sample"


def test_multi_tile_paths_match_reference(small_tiles):
    """Samples split over several programs (partials + the ordered second kernel) and programs
    looping over several tiles, for both per-sample ops, forward and backward."""
    from gankernels.triton._common import row_tiling

    shape = (3, 5, 7)
    assert row_tiling(3, 35)[2] > 1 and row_tiling(3, 35)[3] > 1, "fixture did not apply"
    real, fake = _tensor(shape, seed=1), _tensor(shape, seed=2)
    eps = torch.rand(3, dtype=torch.float64, device=DEVICE)
    ops = torch.ops.gankernels
    assert_close(
        gankernels.gp_interpolate(real, fake, eps, impl="triton"),
        reference.gp_interpolate(real, fake, eps),
        label="gp forward",
    )
    grad = _tensor(shape, seed=3)
    leaves = [t.clone().requires_grad_() for t in (real, fake, eps)]
    reference.gp_interpolate(*leaves).backward(grad)
    got = ops.gp_interpolate_backward_triton(grad, eps, real, fake)
    for name, a, leaf in zip(("real", "fake", "eps"), got, leaves, strict=True):
        assert_close(a, leaf.grad, label=f"gp backward {name}")

    for target, one_sided in ((1.0, False), (2.0, True), (0.0, False)):
        loss, norms = gankernels.norm_penalty(real, target, 10.0, one_sided, 0.5, impl="triton")
        ref_loss, ref_norms = reference.norm_penalty(real, target, 10.0, one_sided, 0.5)
        assert_close(loss, ref_loss, label="penalty")
        assert_close(norms, ref_norms, label="norms")
        g = real.clone().requires_grad_()
        ref_loss, ref_norms = reference.norm_penalty(g, target, 10.0, one_sided, 0.5)
        grad_norms = _tensor((3,), seed=4)
        (2.0 * ref_loss + (ref_norms * grad_norms).sum()).backward()
        got = ops.norm_penalty_backward_triton(
            torch.tensor(2.0, dtype=torch.float64, device=DEVICE),
            grad_norms,
            real,
            norms,
            target,
            10.0,
            one_sided,
            0.5,
        )
        assert_close(got, g.grad, label=f"penalty backward K={target}")


def test_per_sample_reductions_are_deterministic(small_tiles):
    x = _tensor((4, 61), torch.float32, seed=1, scale=100.0)
    y = _tensor((4, 61), torch.float32, seed=2, scale=100.0)
    eps = torch.rand(4, device=DEVICE)
    ops = torch.ops.gankernels
    first = ops.gp_interpolate_backward_triton(x, eps, x, y)[2]
    loss, norms = ops.norm_penalty_triton(x, 1.0, 10.0, False, 1.0)
    for _ in range(3):
        assert torch.equal(ops.gp_interpolate_backward_triton(x, eps, x, y)[2], first)
        again = ops.norm_penalty_triton(x, 1.0, 10.0, False, 1.0)
        assert torch.equal(again[0], loss) and torch.equal(again[1], norms)


@pytest.mark.parametrize("role", ("critic", "generator"))
def test_adversarial_multi_program_path(monkeypatch, role):
    """Outputs too large for one program: per-program partials + the combine kernel (and the
    relativistic means and derivative means computed the same way)."""
    from gankernels.triton import adversarial_loss as adv

    monkeypatch.setattr(adv, "SMALL_BLOCKS", 0)
    monkeypatch.setattr(adv, "MAX_BLOCK", 16)
    block, single, programs = adv._launch_shape(100, 37)
    assert not single and programs > 1
    real, fake = _tensor((100,), seed=1), _tensor((37,), seed=2)
    grad_loss = torch.tensor(0.7, dtype=torch.float64, device=DEVICE)
    kinds = ("minimax", "hinge", "least_squares", "relativistic", "jensen_shannon", "neyman")
    for kind in kinds:
        for ns in (False, True) if role == "generator" else (False,):
            args = (kind, role, -0.5, 1.5, 0.5, ns)
            assert_close(
                gankernels.adversarial_loss(real, fake, *args, impl="triton"),
                reference.adversarial_loss(real, fake, *args),
                label=kind,
            )
            leaves = [real.clone().requires_grad_(), fake.clone().requires_grad_()]
            ref = reference.adversarial_loss(*leaves, *args)
            want = torch.autograd.grad(
                ref * grad_loss, leaves, allow_unused=True, materialize_grads=True
            )
            got = torch.ops.gankernels.adversarial_loss_backward_triton(
                grad_loss, real, fake, *args, 0.0, 1.0, None, None, "mean"
            )
            assert_close(got[0], want[0], label=f"{kind} grad real")
            assert_close(got[1], want[1], label=f"{kind} grad fake")


def test_adversarial_extreme_logits_stay_finite():
    """Softplus and sigmoid are evaluated from the side that cannot overflow."""
    v = torch.tensor(
        [-1000.0, -80.0, -20.0, 0.0, 20.0, 80.0, 1000.0], dtype=torch.float64, device=DEVICE
    )
    for kind in (
        "minimax",
        "nonsaturating",
        "relativistic",
        "gan",
        "jensen_shannon",
        "total_variation",
    ):
        leaves = [v.clone().requires_grad_(), v.flip(0).clone().requires_grad_()]
        loss = gankernels.adversarial_loss(*leaves, kind, "critic", impl="triton")
        loss.backward()
        assert torch.isfinite(loss), kind
        assert all(torch.isfinite(t.grad).all() for t in leaves), kind
        assert_close(loss, reference.adversarial_loss(v, v.flip(0), kind, "critic"), label=kind)


def test_non_row_layouts():
    """Outputs keep empty_like's strides for any dense input (a batch-inner permutation is
    computed in a buffer and copied), and strided eps / grad_norms are read by stride."""
    base = _tensor((5, 3, 4), seed=1)
    real = base.permute(1, 0, 2)  # dense, but the batch dim is not outermost
    fake = _tensor((3, 5, 4), seed=2)
    eps = _tensor((6,), seed=3)[::2].abs()
    out = gankernels.gp_interpolate(real, fake, eps, impl="triton")
    assert out.stride() == torch.empty_like(real).stride()
    assert_close(out, reference.gp_interpolate(real, fake, eps), label="permuted")
    grad = _tensor((3, 5, 4), seed=4).permute(0, 2, 1)  # (3, 4, 5), sample dims transposed
    loss, norms = gankernels.norm_penalty(grad, impl="triton")
    assert_close(norms, reference.norm_penalty(grad)[1], label="transposed norms")
    expanded = torch.ones((), dtype=torch.float64, device=DEVICE).expand(3)  # stride 0
    got = torch.ops.gankernels.norm_penalty_backward_triton(
        torch.zeros((), dtype=torch.float64, device=DEVICE),
        expanded,
        grad,
        norms,
        1.0,
        10.0,
        False,
        1.0,
    )
    assert got.stride() == torch.empty_like(grad).stride()
    assert_close(got, grad / norms[:, None, None], label="backward with stride-0 grad_norms")


def test_empty_samples():
    x = torch.empty((3, 0), dtype=torch.float64, device=DEVICE)
    eps = torch.rand(3, dtype=torch.float64, device=DEVICE)
    assert gankernels.gp_interpolate(x, x, eps, impl="triton").shape == (3, 0)
    grads = torch.ops.gankernels.gp_interpolate_backward_triton(x, eps, x, x)
    assert torch.equal(grads[2], torch.zeros_like(eps))
    loss, norms = gankernels.norm_penalty(x, 1.0, 10.0, impl="triton")
    assert_close(loss, reference.norm_penalty(x, 1.0, 10.0)[0], label="empty-sample penalty")
    assert torch.equal(norms, torch.zeros_like(norms))


# --- clip_: the multi-tensor kernel -----------------------------------------------------------


def _clip_both(params, c):
    ours = [p.clone() for p in params]
    ref = [p.clone() for p in params]
    count = gankernels.clip_(ours, c, impl="triton")
    ref_count = reference.clip_(ref, c)
    for i, (a, b) in enumerate(zip(ours, ref, strict=True)):
        assert torch.equal(a.isnan(), b.isnan()), f"params[{i}]: NaN moved"
        assert torch.equal(a.nan_to_num(), b.nan_to_num()), f"params[{i}] differs"
    assert count.dtype == torch.int64 and count.shape == () and count.device == ref[0].device
    assert int(count) == int(ref_count)
    return count


def test_clip_chunk_edges_and_specials():
    """Sizes straddling the chunk edge, more tensors than chunks, NaN and +-inf (apex-style)."""
    from gankernels.triton.clip import BLOCK

    sizes = (1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 1, 0, 3, 64)
    params = [_tensor((n,), torch.float32, seed=i, scale=0.02) for i, n in enumerate(sizes)]
    params[1][5] = float("nan")
    params[3][BLOCK] = float("inf")
    params[4][0] = -float("inf")
    _clip_both(params, 0.01)
    _clip_both([_tensor((7,), torch.float32, seed=i, scale=0.02) for i in range(40)], 0.01)


@pytest.mark.parametrize("dtype", (torch.float16, torch.bfloat16, torch.float64))
def test_clip_counts_c_rounded_to_dtype(dtype):
    """Elements exactly at +-c (rounded to the dtype) and just inside both count as reference."""
    from gankernels.triton.clip import round_to

    c = 0.01
    at = torch.tensor(c, dtype=dtype).item()
    assert round_to(c, dtype) == at
    below = torch.nextafter(
        torch.tensor(at, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64)
    ).to(dtype)
    values = torch.tensor([at, -at, below.item(), 1.0, -1.0, 0.0], dtype=dtype, device=DEVICE)
    count = _clip_both([values, _tensor((300,), dtype, seed=1, scale=0.02)], c)
    assert int(count) >= 4


def test_clip_round_to_matches_torch():
    from gankernels.triton.clip import round_to

    gen = torch.Generator().manual_seed(0)
    cs = (10 ** (torch.rand(500, generator=gen, dtype=torch.float64) * 12 - 8)).tolist()
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        for c in cs + [1e6, 1e40]:
            assert round_to(c, dtype) == torch.tensor(c, dtype=dtype).item(), (c, dtype)


def test_clip_one_launch_per_dtype_and_cached_table(monkeypatch):
    from gankernels.triton import clip as clip_mod

    launches = []
    real_wrap = clip_mod.wrap_triton

    def counting_wrap(kernel):
        launches.append(kernel.fn.__name__)
        return real_wrap(kernel)

    monkeypatch.setattr(clip_mod, "wrap_triton", counting_wrap)
    params = [
        _tensor((n,), dtype, seed=n, scale=0.02)
        for n, dtype in (
            (100, torch.float32),
            (3000, torch.float32),
            (50, torch.float16),
            (10, torch.float32),
            (7, torch.float16),
        )
    ]
    _clip_both(params, 0.01)
    assert launches == ["_clip_table_kernel", "_clip_table_kernel"], launches

    clip_mod._TABLE_CACHE.clear()
    gankernels.clip_(params, 0.01, impl="triton")
    tables = {id(v[0]) for v in clip_mod._TABLE_CACHE.values()}
    gankernels.clip_(params, 0.02, impl="triton")
    assert {id(v[0]) for v in clip_mod._TABLE_CACHE.values()} == tables, "table rebuilt"


def test_clip_strided_and_per_tensor_paths():
    from gankernels.triton import clip as clip_mod

    strided = _tensor((40, 30), torch.float32, seed=1, scale=0.02)[:, ::3]
    channels_last = _tensor((2, 3, 4, 5), torch.float32, seed=2, scale=0.02, layout="channels_last")
    _clip_both([strided, channels_last, _tensor((9,), torch.float64, seed=3, scale=0.02)], 0.01)

    # The per-tensor kernel is what a traced op records; it must agree with the table kernel.
    params = [_tensor((n,), torch.float32, seed=n, scale=0.02) for n in (5, 2049, 64)]
    ours = [p.clone() for p in params]
    count = torch.zeros((), dtype=torch.int64, device=DEVICE)
    clip_mod.clip_per_tensor(ours, 0.01, count)
    ref = [p.clone() for p in params]
    assert int(count) == int(reference.clip_(ref, 0.01))
    assert all(torch.equal(a, b) for a, b in zip(ours, ref, strict=True))


# --- GPU-only properties ----------------------------------------------------------------------


@NEEDS_GPU
def test_no_host_synchronisation():
    """Forward and backward of every op without a device-to-host sync (grad_loss is read by the
    kernels, the clip table goes up pinned and non-blocking)."""
    x = _tensor((16, 3, 8, 8), torch.float32, seed=1, requires_grad=True)
    y = _tensor((16, 3, 8, 8), torch.float32, seed=2, requires_grad=True)
    eps = torch.rand(16, device=DEVICE)
    params = [_tensor((1000,), torch.float32, seed=3, scale=0.02)]
    gankernels.clip_(params, 0.01, impl="triton")  # warm the table cache and the compiler
    _all_ops(x, y, eps, params)[0].backward()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out, _ = _all_ops(x, y, eps, params)
        out.backward()
        gankernels.clip_([p.clone() for p in params], 0.01, impl="triton")
    finally:
        torch.cuda.set_sync_debug_mode(0)


# --- compiled Triton, without a GPU -----------------------------------------------------------


@pytest.mark.slow
def test_kernels_compile_for_sm90_and_inline_into_torch_compile():
    """The interpreter runs the kernels' Python; the compiler must also accept them. Compiles
    every kernel (a quick subset of specialisations) down to a cubin for sm_90 with triton's
    ptxas, no GPU needed (`python scripts/triton_compile_check.py --full` covers all of
    them), then captures torch.compile's graph of every op with compiled Triton: the ops
    decompose into their kernels (triton_op + wrap_triton), which the interpreter cannot show."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "triton_compile_check.py"
    done = _run(
        f"import runpy, sys; sys.argv = [{str(script)!r}, '--arch', '90', '--trace']; "
        f"runpy.run_path({str(script)!r}, run_name='__main__')",
        env_drop=("TRITON_INTERPRET",),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    compiled, traced = done.stdout.strip().splitlines()[-2:]
    for kernel in (
        "_gp_forward_kernel",
        "_gp_backward_kernel",
        "_row_sum_kernel",
        "_sumsq_kernel",
        "_finish_kernel",
        "_backward_kernel",
        "_small_kernel",
        "_partial_kernel",
        "_combine_kernel",
        "_grad_kernel",
        "_none_kernel",
        "_clip_table_kernel",
        "_clip_tensor_kernel",
        "_pair_sum_kernel",
        "_gradient_kernel",
    ):
        assert kernel in compiled, f"{kernel} was not compiled: {compiled}"
    assert traced.startswith("torch.compile graph kernels:"), done.stdout
    for kernel in (
        "_gp_forward_kernel",
        "_sumsq_kernel",
        "_finish_kernel",
        "_small_kernel",
        "_clip_tensor_kernel",
        "_pair_sum_kernel",
    ):
        assert kernel in traced, f"{kernel} is not in the compiled graph: {traced}"


@pytest.mark.parametrize("reduction", ("none", "sum"))
def test_adversarial_weighted_multi_program_path(monkeypatch, reduction):
    """Weights (another dtype, a non-dense layout), label smoothing, margin and the "none" / "sum"
    reductions through the multi-program kernels, with real_out, fake_out, the weights and a
    per-element grad_loss in different memory orders."""
    from gankernels.triton import adversarial_loss as adv

    monkeypatch.setattr(adv, "SMALL_BLOCKS", 0)
    monkeypatch.setattr(adv, "MAX_BLOCK", 16)
    assert adv._launch_shape(120, 120)[2] > 1
    real = _tensor((10, 24), seed=1)[:, ::2]  # not dense
    fake = _tensor((12, 10), seed=2).t()  # dense, transposed
    real_w = _tensor((10, 12), torch.float32, seed=3).abs()
    fake_w = _tensor((10, 24), seed=4)[:, ::2].abs()
    if reduction == "none":
        grad_loss = _tensor((12, 10), torch.float32, seed=5).t()
    else:
        grad_loss = torch.tensor([0.7], dtype=torch.float64, device=DEVICE)
    cases = (
        ("relativistic", "critic", False),
        ("relativistic", "generator", False),
        ("minimax", "critic", False),
        ("hinge", "critic", False),
        ("jensen_shannon", "generator", True),
    )
    for kind, role, ns in cases:
        r = real if role == "critic" or kind == "relativistic" else None
        rw = real_w if r is not None else None
        args = (kind, role, -0.5, 1.5, 0.5, ns, 0.25, 0.5, rw, fake_w, reduction)
        loss = torch.ops.gankernels.adversarial_loss_triton(r, fake, *args)
        assert_close(loss, reference.adversarial_loss(r, fake, *args), label=f"{kind} {role}")
        want = reference.adversarial_loss_backward(grad_loss, r, fake, *args)
        got = torch.ops.gankernels.adversarial_loss_backward_triton(grad_loss, r, fake, *args)
        assert_close(got[1], want[1], label=f"{kind} {role} grad fake")
        if r is not None:
            assert_close(got[0], want[0], label=f"{kind} {role} grad real")
