#!/usr/bin/env python3
"""The static performance gate of the CUDA kernels: what the compiled device code of
gankernels._C says about each kernel, read with cuobjdump, no GPU needed.

For every kernel instantiation (one GPU architecture, sm_90 by default): registers, stack,
local memory, shared memory, spill instructions (STL/LDL), SASS instruction count, and
whether it has 128-bit global loads and stores. The gate fails on

  * any stack, local memory or spill instruction in a hot kernel (every float32, float16 and
    bfloat16 instantiation; float64 is the checking dtype and is reported only), and
  * a kernel without 128-bit global loads, or a kernel that writes arrays without 128-bit
    global stores (VECTOR_LOADS / VECTOR_STORES below; the tiled PAIRWISE kernels are exempt).

    python scripts/sass_report.py [LIBRARY] [--arch sm_90] [--markdown FILE] [--json FILE]

LIBRARY defaults to the installed gankernels._C. cuobjdump comes from PATH, the CUDA toolkit,
or the copy Triton ships. Exit status: 0 when the gate passes, 1 when it fails, 2 when the
library has no device code or cuobjdump is missing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass

# Every kernel reads its inputs in 128-bit packs.
VECTOR_LOADS = (
    "gp_interpolate_kernel",
    "gp_scale_kernel",
    "gp_backward_kernel",
    "norm_penalty_kernel",
    "norm_penalty_backward_kernel",
    "adversarial_reduce_kernel",
    "adversarial_grad_kernel",
    "adversarial_terms_kernel",
    "clip_kernel",
    "ema_kernel",
)
# The kernels that write whole arrays write them in 128-bit packs (the reductions write scalars).
VECTOR_STORES = (
    "gp_interpolate_kernel",
    "gp_scale_kernel",
    "gp_backward_kernel",
    "norm_penalty_backward_kernel",
    "adversarial_grad_kernel",
    "clip_kernel",
    "ema_kernel",
)
# One kernel for every dtype (each tensor carries its own), not one instantiation per dtype.
ALL_DTYPES = ("clip_kernel", "ema_kernel")
# Tiled pairwise kernels: compute-bound (a feature is read once per tile of 32 x 32 pairs, from
# shared memory), held to the no-spill rule but not the 128-bit one; they run on opmath copies,
# so they exist for float32 and float64 only.
PAIRWISE = ("mmd2_pair_sum_kernel", "mmd2_gradient_kernel")
KERNELS = VECTOR_LOADS + PAIRWISE

LOAD_128 = re.compile(r"\bLDG\.E(?:\.\w+)*\.128\b")
STORE_128 = re.compile(r"\bSTG\.E(?:\.\w+)*\.128\b")
SPILL = re.compile(r"\b(?:STL|LDL)(?:\.\w+)*\b")
INSTRUCTION = re.compile(r"^\s+/\*[0-9a-f]{4,}\*/\s+\S")


@dataclass
class Kernel:
    symbol: str
    name: str  # the kernel's own name, e.g. gp_interpolate_kernel
    signature: str  # its template arguments, readable
    dtype: str
    registers: int = 0
    stack: int = 0
    local: int = 0
    shared: int = 0
    spill_instructions: int = 0
    instructions: int = 0
    load_128: bool = False
    store_128: bool = False

    @property
    def hot(self) -> bool:
        return self.dtype != "float64"


def find_cuobjdump() -> str | None:
    candidates = [shutil.which("cuobjdump")]
    for home in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if home:
            candidates.append(os.path.join(home, "bin", "cuobjdump"))
    try:
        import triton

        candidates.append(
            os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
        )
    except ImportError:
        pass
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def demangle(symbols: list[str]) -> dict[str, str]:
    cxxfilt = shutil.which("c++filt")
    if cxxfilt is None:
        return {s: s for s in symbols}
    out = subprocess.run(
        [cxxfilt], input="\n".join(symbols), capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return dict(zip(symbols, out))


STAGES = ("Means", "Loss", "DerivSums")
DTYPES = (
    ("c10::BFloat16", "bfloat16"),
    ("c10::Half", "float16"),
    ("double", "float64"),
    ("float", "float32"),
)


def describe(symbol: str, readable: str) -> tuple[str, str, str]:
    """(kernel name, template arguments, scalar dtype) of a demangled kernel symbol."""
    name = next((k for k in KERNELS if re.search(rf"\b{k}\b", readable)), "")
    args = ""
    m = re.search(rf"{name}<(.*?)>\(", readable) if name else None
    if m:
        args = re.sub(r"\(?gankernels::cuda::\(anonymous namespace\)::\w+\)?", "", m.group(1))
        args = args.replace("c10::", "")
        # adversarial_reduce_kernel's Stage, by name (csrc/cuda/adversarial_loss.cu)
        args = re.sub(r",\s*\(?\)?(\d)$", lambda s: ", " + STAGES[int(s.group(1))], args)
    first = m.group(1).split(",")[0].strip() if m else ""
    dtype = next((d for cpp, d in DTYPES if first == cpp), "")
    if name in ALL_DTYPES:
        dtype = "all"  # one kernel for every dtype of the list
    return name, args, dtype


def read_kernels(cuobjdump: str, library: str, arch: str) -> list[Kernel]:
    usage = subprocess.run(
        [cuobjdump, "--dump-resource-usage", "-arch", arch, library],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    kernels: dict[str, Kernel] = {}
    symbol = None
    for line in usage.splitlines():
        m = re.match(r"\s*Function (\S+):", line)
        if m:
            symbol = m.group(1)
            continue
        m = re.search(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)", line)
        if m and symbol:
            regs, stack, shared, local = map(int, m.groups())
            kernels[symbol] = Kernel(
                symbol, "", "", "", registers=regs, stack=stack, local=local, shared=shared
            )
            symbol = None
    names = demangle(list(kernels))
    for symbol, kernel in kernels.items():
        kernel.name, kernel.signature, kernel.dtype = describe(symbol, names[symbol])

    # The SASS, streamed: hundreds of thousands of lines.
    proc = subprocess.Popen(
        [cuobjdump, "-sass", "-arch", arch, library], stdout=subprocess.PIPE, text=True
    )
    current = None
    assert proc.stdout is not None
    for line in proc.stdout:
        m = re.match(r"\s*Function : (\S+)", line)
        if m:
            current = kernels.get(m.group(1))
            continue
        if current is None or not INSTRUCTION.match(line):
            continue
        current.instructions += 1
        if LOAD_128.search(line):
            current.load_128 = True
        if STORE_128.search(line):
            current.store_128 = True
        if SPILL.search(line):
            current.spill_instructions += 1
    if proc.wait() != 0:
        raise subprocess.CalledProcessError(proc.returncode, "cuobjdump -sass")
    return sorted(
        (k for k in kernels.values() if k.name), key=lambda k: (k.name, k.dtype, k.signature)
    )


def violations(kernels: list[Kernel]) -> list[str]:
    problems = []
    for name in KERNELS:
        if not any(k.name == name for k in kernels):
            problems.append(f"{name}: not in the library")
    for k in kernels:
        label = f"{k.name}<{k.signature}>"
        if k.hot and (k.stack or k.local or k.spill_instructions):
            problems.append(
                f"{label}: {k.stack} B stack, {k.local} B local, "
                f"{k.spill_instructions} spill instructions"
            )
        if k.name in VECTOR_LOADS and not k.load_128:
            problems.append(f"{label}: no 128-bit global load")
        if k.name in VECTOR_STORES and not k.store_128:
            problems.append(f"{label}: no 128-bit global store")
    return problems


def markdown(kernels: list[Kernel], arch: str, library: str, problems: list[str]) -> str:
    built = ""
    info = os.path.join(os.path.dirname(os.path.abspath(library)), "_build_info.json")
    if os.path.exists(info):
        with open(info) as f:
            b = json.load(f)
        built = (
            f" Built by nvcc {b.get('nvcc')} for {b.get('arch_list')} against torch "
            f"{b.get('torch')}."
        )
    lines = [
        f"# Static gate of the CUDA kernels ({arch})",
        "",
        f"Read from `{os.path.basename(library)}` on {datetime.date.today().isoformat()} with "
        f"cuobjdump by `scripts/sass_report.py`.{built} "
        "Hot: every float32, float16 and bfloat16 instantiation (no stack, local memory or "
        "spills allowed); float64 is reported only. `ld128`/`st128`: 128-bit global loads / "
        "stores in the SASS.",
        "",
        "| kernel | template arguments | regs | stack | local | shared | spills | SASS | ld128 |"
        " st128 |",
        "|---|---|---:|---:|---:|---:|---:|---:|:-:|:-:|",
    ]
    for k in kernels:
        lines.append(
            f"| {k.name} | {k.signature} | {k.registers} | {k.stack} | {k.local} | {k.shared} "
            f"| {k.spill_instructions} | {k.instructions} | {'yes' if k.load_128 else 'no'} | "
            f"{'yes' if k.store_128 else ('-' if k.name not in VECTOR_STORES else 'no')} |"
        )
    lines += ["", f"Gate: {'PASS' if not problems else 'FAIL'}"]
    lines += [f"- {p}" for p in problems]
    return "\n".join(lines) + "\n"


def installed_library() -> str:
    import importlib.util

    spec = importlib.util.find_spec("gankernels._C")
    if spec is None or spec.origin is None:
        raise SystemExit("gankernels._C is not installed: `pip install .` builds it")
    return spec.origin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "library",
        nargs="?",
        help="a shared library or cubin (default: the installed gankernels._C)",
    )
    parser.add_argument("--arch", default="sm_90", help="the SASS architecture to read")
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)

    library = args.library or installed_library()
    cuobjdump = find_cuobjdump()
    if cuobjdump is None:
        print("cuobjdump not found (CUDA toolkit, PATH or triton's bundle)", file=sys.stderr)
        return 2
    kernels = read_kernels(cuobjdump, library, args.arch)
    if not kernels:
        print(f"{library} has no {args.arch} device code of gankernels", file=sys.stderr)
        return 2
    problems = violations(kernels)
    table = markdown(kernels, args.arch, library, problems)
    print(table, end="")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "arch": args.arch,
                    "kernels": [asdict(k) for k in kernels],
                    "violations": problems,
                },
                f,
                indent=1,
            )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
