#!/usr/bin/env python3
"""Compile the Triton kernels for a real GPU target on a machine without one.

    python scripts/triton_compile_check.py [--full] [--arch 90] [--trace]

The Triton interpreter (TRITON_INTERPRET=1) runs the kernels' Python, not the compiler, so code
that only the compiler rejects would pass every CPU test. This tool calls every op's launcher on
small CPU tensors with a stand-in driver that reports a CUDA target of the given architecture, and
turns each launch into a compile-only warmup (source -> TTIR -> TTGIR -> LLVM -> PTX -> cubin with
the ptxas shipped in triton). Nothing is launched and no GPU driver is loaded. `--full` covers
every dtype, every loss kind and role and both adversarial-loss paths (a few minutes the first
time; Triton caches the binaries); the default is a quick subset. `--trace` then captures
torch.compile's graph of a function calling every op and lists the Triton kernels in it: with
compiled Triton (unlike the interpreter) the ops decompose into their kernels.

It must run in its own process: it replaces the active Triton driver and `JITFunction.__getitem__`
before the op modules define their kernels.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter


def _install_compile_only(arch: int) -> Counter:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.runtime.jit import JITFunction

    class _TargetOnlyDriver:
        """Just what JITFunction.run asks before compiling: a device, a stream, a target."""

        def get_current_device(self) -> int:
            return 0

        def get_current_stream(self, device=None) -> int:
            return 0

        def get_current_target(self) -> GPUTarget:
            return GPUTarget("cuda", arch, 32)

    triton.runtime.driver.set_active(_TargetOnlyDriver())
    compiled: Counter = Counter()

    def compile_only(self, grid):
        def launch(*args, **kwargs):
            kernel = self.run(*args, grid=grid, warmup=True, **kwargs)
            if "cubin" not in kernel.asm:
                raise RuntimeError(f"{self.fn.__name__}: no cubin produced")
            compiled[self.fn.__name__] += 1

        return launch

    JITFunction.__getitem__ = compile_only
    return compiled


def _loss_calls(dtype, kind: str, role: str, ns: bool, variants) -> None:
    """Forward and backward of one adversarial loss on [7] outputs, for each (reduction,
    weighted) variant (label smoothing 0.25 and margin 0.5, which only some kinds read)."""
    import torch

    from gankernels import reference
    from gankernels.triton import op

    acc = reference.opmath_dtype(dtype)
    r = torch.randn(7, dtype=dtype)
    f = torch.randn(7, dtype=dtype)
    w = torch.rand(7, dtype=dtype)
    reads_real = role == "critic" or kind == "relativistic"
    for reduction, weighted in variants:
        real_w = w if weighted and reads_real else None
        fake_w = w if weighted else None
        args = (kind, role, -1.0, 1.0, 0.0, ns, 0.25, 0.5, real_w, fake_w, reduction)
        op("adversarial_loss")(r, f, *args)
        grad_loss = torch.rand(7 if reduction == "none" else (), dtype=acc)
        torch.ops.gankernels.adversarial_loss_backward_triton(grad_loss, r, f, *args)


def _exercise(full: bool) -> None:
    import torch

    from gankernels import reference
    from gankernels.triton import adversarial_loss as adv
    from gankernels.triton import clip as clip_mod
    from gankernels.triton import ema as ema_mod
    from gankernels.triton import op

    dtypes = (
        (torch.float32, torch.float64, torch.float16, torch.bfloat16)
        if full
        else (torch.float32, torch.bfloat16)
    )
    for dtype in dtypes:
        acc = reference.opmath_dtype(dtype)
        x = torch.randn(4, 10, dtype=dtype)
        y = torch.randn(4, 10, dtype=dtype)
        eps = torch.rand(4, dtype=dtype)
        grad_loss = torch.ones((), dtype=acc)
        norms = torch.ones(4, dtype=acc)
        op("gp_interpolate")(x, y, eps)
        torch.ops.gankernels.gp_interpolate_backward_triton(x, eps, x, y)
        torch.ops.gankernels.gp_interpolate_backward_triton(x, eps, None, None)
        op("norm_penalty")(x, 1.0, 10.0, True, 1.0)
        torch.ops.gankernels.norm_penalty_backward_triton(
            grad_loss, norms, x, norms, 1.0, 10.0, False, 1.0
        )
        torch.ops.gankernels.norm_penalty_backward_triton(
            grad_loss, None, x, norms, 0.0, 10.0, True, 1.0
        )
        op("clip_")([x, y], 0.01)
        with torch._library.triton.set_wrap_triton_enabled(False):
            clip_mod.clip_per_tensor([x], 0.01, torch.zeros((), dtype=torch.int64))
        op("ema_")([x, y], [y.clone(), x.clone()], 0.999)
        with torch._library.triton.set_wrap_triton_enabled(False):
            ema_mod.ema_per_tensor([(x, y)], 0.001)
        # mmd2 runs on opmath copies: float32 and float64 kernels, both estimators.
        op("mmd2")(x, y, [1.0, 2.0], True)
        torch.ops.gankernels.mmd2_backward_triton(grad_loss, x, y, [1.0, 2.0], False)
        if dtype == torch.float32:
            # Sizes and strides of 1, which Triton specialises into compile-time constants.
            one = torch.randn(1, 1)
            op("gp_interpolate")(one, one, torch.rand(1))
            torch.ops.gankernels.gp_interpolate_backward_triton(one, torch.rand(1), one, one)
            op("norm_penalty")(one, 1.0, 10.0, False, 1.0)
            torch.ops.gankernels.norm_penalty_backward_triton(
                grad_loss, norms[:1], one, norms[:1], 1.0, 10.0, False, 1.0
            )
            rel = ("relativistic", "critic", -1.0, 1.0, 0.0, False, 0.0, 1.0, None, None, "mean")
            op("adversarial_loss")(one[0], one[0], *rel)
            torch.ops.gankernels.adversarial_loss_backward_triton(grad_loss, one[0], one[0], *rel)
            op("clip_")([one], 0.01)
            op("ema_")([one], [one.clone()], 0.5)
        kinds = (
            reference.LOSS_KINDS if full or dtype == torch.float32 else ("minimax", "relativistic")
        )
        # Every kind's plain mean loss; the weights and the other reductions on a few.
        plain = (("mean", False),)
        variants = (("mean", False), ("sum", True), ("none", False), ("none", True))
        saved = adv.SMALL_BLOCKS
        try:
            for small in (True, False) if full else (True,):
                adv.SMALL_BLOCKS = saved if small else 0
                for kind in kinds:
                    for role, ns in (("critic", False), ("generator", False), ("generator", True)):
                        _loss_calls(dtype, kind, role, ns, variants if full else plain)
                for kind, role in (("minimax", "critic"), ("relativistic", "generator")):
                    _loss_calls(dtype, kind, role, False, variants)
            if not full:
                adv.SMALL_BLOCKS = 0
                _loss_calls(dtype, "relativistic", "critic", False, variants)
                _loss_calls(dtype, "hinge", "critic", False, (("none", True),))
        finally:
            adv.SMALL_BLOCKS = saved


def _trace() -> list[str]:
    """The Triton kernels that torch.compile's AOT forward graph holds for a function calling
    every op: with compiled Triton they are inlined as triton_kernel_wrapper_functional nodes
    (the graph is captured, then compilation stops; nothing runs)."""
    import torch
    from torch._dynamo.backends.common import aot_autograd
    from torch._higher_order_ops.triton_kernel_wrap import (
        kernel_side_table,
        triton_kernel_wrapper_functional,
    )

    from gankernels.ops import _triton  # noqa: F401  (the ops with their autograd)

    found: list[str] = []

    class _Captured(Exception):
        pass

    def capture(gm, example_inputs):
        for node in gm.graph.nodes:
            if node.target is triton_kernel_wrapper_functional:
                kernel = kernel_side_table.get_kernel(node.kwargs["kernel_idx"])
                found.append(kernel.fn.__name__)
        raise _Captured

    def every_op(x, y, eps, params, averages):
        ops = torch.ops.gankernels
        x_hat = ops.gp_interpolate_triton(x, y, eps)
        penalty, _ = ops.norm_penalty_triton(x_hat, 1.0, 10.0, False, 1.0)
        loss = ops.adversarial_loss_triton(
            x.sum(1),
            y.sum(1),
            "hinge",
            "critic",
            -1.0,
            1.0,
            0.0,
            False,
            0.0,
            1.0,
            None,
            None,
            "mean",
        )
        ops.ema__triton(averages, params, 0.999)
        mmd = ops.mmd2_triton(x, y, [1.0, 4.0], True)
        return penalty + loss + mmd, ops.clip__triton(params, 0.01)

    compiled = torch.compile(every_op, backend=aot_autograd(fw_compiler=capture), fullgraph=True)
    try:
        x, y, eps = torch.randn(4, 8), torch.randn(4, 8), torch.rand(4)
        compiled(x, y, eps, [torch.randn(10)], [torch.randn(10)])
    except Exception:  # capture() stops compilation once it has the graph (dynamo wraps it)
        if not found:
            raise
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="every dtype, kind and path")
    parser.add_argument("--arch", type=int, default=90, help="CUDA compute capability, e.g. 80")
    parser.add_argument(
        "--trace",
        action="store_true",
        help="also list the kernels torch.compile inlines into its graph",
    )
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET") == "1" or "gankernels.triton._common" in sys.modules:
        print(
            "compile_check must run in a fresh process without TRITON_INTERPRET=1", file=sys.stderr
        )
        return 2
    start = time.time()
    compiled = _install_compile_only(args.arch)
    _exercise(args.full)
    names = ", ".join(f"{name} x{n}" for name, n in sorted(compiled.items()))
    print(f"compiled for sm_{args.arch} in {time.time() - start:.0f}s: {names}")
    if args.trace:
        print("torch.compile graph kernels: " + ", ".join(_trace()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
