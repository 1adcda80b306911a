"""What the benchmarks measure: the device, the size sets, the inputs and the timed callables.

Inputs come from `gankernels.testing.sample_inputs` (the factory the tests use); this module only
picks the benchmark sizes out of it and adds the parameter lists of real critics. The eager
baseline of every op is `gankernels.reference`, the oracle of the tests.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch

import gankernels
import gankernels.ops
from gankernels import reference, testing

# The 1-minute load when the suite starts: other processes on the machine skew CPU timings.
LOAD_AT_START = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

# --- device and size sets ---------------------------------------------------------------------


def bench_device() -> str:
    """The device the suite measures: GANKERNELS_BENCH_DEVICE, else CUDA when a GPU is visible."""
    forced = os.environ.get("GANKERNELS_BENCH_DEVICE")
    if forced:
        if forced not in ("cpu", "cuda"):
            raise ValueError(f"GANKERNELS_BENCH_DEVICE must be 'cpu' or 'cuda', got {forced!r}")
        if forced == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("GANKERNELS_BENCH_DEVICE=cuda but torch sees no CUDA GPU")
        return forced
    return "cuda" if torch.cuda.is_available() else "cpu"


def quick_mode(config=None) -> bool:
    """The CI smoke mode: env GANKERNELS_BENCH_QUICK=1 or `pytest bench/ --quick`."""
    if os.environ.get("GANKERNELS_BENCH_QUICK", "") not in ("", "0"):
        return True
    return bool(config is not None and config.getoption("--quick", default=False))


def size_set(device: str, quick: bool) -> str:
    """ "quick" (smallest sizes, one round), "cpu" (small set for 2 cores) or "gpu" (full)."""
    if quick:
        return "quick"
    return "gpu" if device == "cuda" else "cpu"


# Images: launch-bound 64x3x32x32 and bandwidth-bound 256x3x64x64 (and larger on a GPU).
IMAGE_SIZES = {
    "quick": [(64, 3, 32, 32)],
    "cpu": [(64, 3, 32, 32), (256, 3, 64, 64)],
    "gpu": [(64, 3, 32, 32), (256, 3, 64, 64), (512, 3, 128, 128)],
}
# Critic outputs: B = 64 and 256 scores (launch-bound), and a PatchGAN critic's 30x30 map per
# sample (230k outputs: where the math, not the call overhead, sets the time).
LOSS_SIZES = {
    "quick": [(64,)],
    "cpu": [(64,), (256,), (256, 1, 30, 30)],
    "gpu": [(64,), (256,), (256, 1, 30, 30)],
}
DTYPES = {
    "quick": [torch.float32],
    "cpu": [torch.float32, torch.bfloat16],
    "gpu": [torch.float32, torch.bfloat16],
}
# minimax, wasserstein, hinge and one f-divergence (KL: f*(g_f(v)) = exp(v - 1)).
LOSS_KINDS = ("minimax", "wasserstein", "hinge", "kl")
CLIP_LISTS = {
    "quick": ["dcgan64", "mlp3x512", "small100"],
    "cpu": ["dcgan64", "mlp3x512", "small100"],
    "gpu": ["dcgan64", "mlp3x512", "small100"],
}
# Whole critic steps: (model, batch size).
GP_STEPS = {
    "quick": [("mlp3x512", 256), ("dcgan32", 64)],
    "cpu": [("mlp3x512", 256), ("dcgan32", 64)],
    "gpu": [("mlp3x512", 256), ("dcgan32", 64)],
}
CLIP_STEPS = {
    "quick": [("mlp3x512", 256), ("dcgan32", 64)],
    "cpu": [("mlp3x512", 256), ("dcgan32", 64)],
    "gpu": [("mlp3x512", 256), ("dcgan32", 64), ("dcgan64", 64)],
}


def fused_backends(device: str) -> list[str]:
    """The fused implementations on `device`: `gankernels.ops.available` less the reference.

    Triton on a CPU would run under its interpreter, which measures Python, not a kernel.
    """
    found = [b for b in gankernels.ops.available(device) if b != "ref"]
    if device == "cpu":
        found = [b for b in found if b != "triton"]
    return found


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def shape_name(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape)) if len(shape) > 1 else f"B={shape[0]}"


OP_LABEL = {"gp_interpolate": "interpolation", "norm_penalty": "norm_penalty"}


def op_label(op: str, kind: str = "") -> str:
    """The op's name in the table: interpolation, norm_penalty, loss:<kind>."""
    return f"loss:{kind}" if op == "adversarial_loss" else OP_LABEL[op]


def op_groups(config=None) -> list[tuple]:
    """(op, kind, shape, dtype) of every differentiable-op group in this run's size set."""
    sset = size_set(bench_device(), quick_mode(config))
    found = []
    for op in ("gp_interpolate", "norm_penalty"):
        for shape in IMAGE_SIZES[sset]:
            for dtype in DTYPES[sset]:
                found.append((op, "", shape, dtype))
    for kind in LOSS_KINDS:
        for shape in LOSS_SIZES[sset]:
            for dtype in DTYPES[sset]:
                found.append(("adversarial_loss", kind, shape, dtype))
    return found


def group_id(group: tuple) -> str:
    op, kind, shape, dtype = group
    return f"{op_label(op, kind)}-{shape_name(shape)}-{dtype_name(dtype)}"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else platform.processor()."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_summary(config=None) -> dict:
    """What every saved result is recorded with: device, CPU, cores, versions, size set."""
    import datetime

    from gankernels._extension import STATUS

    device = bench_device()
    return {
        "device": device,
        "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gankernels": gankernels.__version__,
        "extension_loaded": STATUS.loaded,
        "fused_backends": fused_backends(device),
        "size_set": size_set(device, quick_mode(config)),
        # Other processes on the machine skew the CPU numbers: the 1-minute load around the run
        # (the suite itself adds up to its thread count).
        "load_avg_start": LOAD_AT_START,
        "load_avg_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


# --- inputs -----------------------------------------------------------------------------------


def _first(
    op: str, device: str, dtype: torch.dtype, shape: Sequence[int], label_has: str = ""
) -> tuple:
    """The first case of the shared factory for one shape: contiguous layout, default params."""
    for label, args, _kwargs in testing.sample_inputs(op, device, dtype, shapes=[tuple(shape)]):
        if label_has in label:
            return args
    raise LookupError(f"gankernels.testing.sample_inputs({op!r}) has no case {label_has!r}")


@dataclass
class OpCase:
    """One benchmark group of a differentiable op: its inputs, the upstream gradient, and the
    bytes a single fused forward+backward must at least read and write (the copy floor)."""

    op: str
    args: tuple
    grad_inputs: tuple  # the tensors whose gradients the backward computes
    grad_out: Optional[torch.Tensor]  # upstream gradient (other than ones), None for a scalar
    bytes_moved: int

    @property
    def inputs(self) -> list[torch.Tensor]:
        return [a for a in self.args if isinstance(a, torch.Tensor)]


def op_case(
    op: str, device: str, dtype: torch.dtype, shape: Sequence[int], kind: str = ""
) -> OpCase:
    """Inputs of one (op, size, dtype) group, from the factory the tests share.

    bytes_moved counts the minimum traffic of forward+backward:
      gp_interpolate  read real, fake, write x_hat; read grad, write both input grads: 6 N
      norm_penalty    read g; read g, write dg: 3 N
      adversarial_loss read v_r, v_g; read both, write both gradients: 6 B
    """
    size = torch.Size(shape).numel() * torch.empty((), dtype=dtype).element_size()
    if op == "gp_interpolate":
        real, fake, eps = _first(op, device, dtype, shape, "contiguous")
        # eps is drawn, never learnt: its gradient (an extra read of real and fake) is not taken.
        real.requires_grad_(True)
        fake.requires_grad_(True)
        grad_out = testing.make(shape, dtype, device, seed=7)
        return OpCase(op, (real, fake, eps), (real, fake), grad_out, 6 * size)
    if op == "norm_penalty":
        args = _first(op, device, dtype, shape, "contiguous-K1.0-w10.0-osFalse-s1.0")
        args[0].requires_grad_(True)
        return OpCase(op, args, (args[0],), None, 3 * size)
    if op == "adversarial_loss":
        args = _first(op, device, dtype, shape, f"-{kind}-critic")
        args[0].requires_grad_(True)
        args[1].requires_grad_(True)
        return OpCase(op, args, (args[0], args[1]), None, 6 * size)
    raise ValueError(f"op must be gp_interpolate, norm_penalty or adversarial_loss, got {op!r}")


def forward_of(op: str, impl: str) -> Callable:
    """The forward of `op` for one implementation: eager reference, compiled reference, fused."""
    if impl == "eager":
        return getattr(reference, op)
    if impl == "compile":
        return compiled_reference(op)
    public = getattr(gankernels.ops, op)
    return functools.partial(public, impl=impl)


@functools.cache
def compiled_reference(op: str) -> Callable:
    """torch.compile of the reference: static shapes (one graph per size, as a training loop
    has), full graph so a break is an error rather than a silently eager fallback."""
    return torch.compile(getattr(reference, op), dynamic=False, fullgraph=True)


def synchronizer(device: str) -> Callable[[], None]:
    if device == "cuda":
        return torch.cuda.synchronize
    return lambda: None


def op_fwd_bwd(case: OpCase, impl: str, device: str) -> Callable[[], None]:
    """One forward and one first-order backward of `case` (autograd.grad, so no .grad
    accumulation pass is timed), or the copy of the same number of bytes for impl "copy"."""
    sync = synchronizer(device)
    if impl == "copy":
        return copy_floor(case.bytes_moved, device, sync)
    forward = forward_of(case.op, impl)
    args, inputs, grad_out = case.args, case.grad_inputs, case.grad_out

    def run() -> None:
        out = forward(*args)
        if isinstance(out, tuple):
            out = out[0]  # norm_penalty: (loss, norms); the penalty's gradient is the one taken
        torch.autograd.grad(out, inputs, grad_out)
        sync()

    return run


def copy_floor(bytes_moved: int, device: str, sync: Callable[[], None]) -> Callable[[], None]:
    """dst.copy_(src) reading and writing bytes_moved bytes in all: the memory-bandwidth floor."""
    n = max(1, bytes_moved // 2 // 4)
    src = torch.randn(n, device=device)
    dst = torch.empty_like(src)

    def run() -> None:
        dst.copy_(src)
        sync()

    return run


# --- critics and their parameter lists --------------------------------------------------------


def mlp3x512(in_features: int = 2) -> torch.nn.Module:
    """The toy critic of WGAN-GP's gan_toy.py: three hidden layers of 512 with ReLU."""
    nn = torch.nn
    return nn.Sequential(
        nn.Linear(in_features, 512),
        nn.ReLU(),
        nn.Linear(512, 512),
        nn.ReLU(),
        nn.Linear(512, 512),
        nn.ReLU(),
        nn.Linear(512, 1),
        nn.Flatten(0),
    )


def dcgan32() -> torch.nn.Module:
    """A DCGAN critic for 3x32x32 images without batch norm (WGAN-GP forbids it in the critic)."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 64, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(128, 256, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(256, 1, 4, 1, 0),
        nn.Flatten(0),
    )


def dcgan64() -> torch.nn.Module:
    """The DCGAN critic for 3x64x64 images used by the WGAN reference code (with batch norm)."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 64, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1, bias=False),
        nn.BatchNorm2d(128),
        nn.LeakyReLU(0.2),
        nn.Conv2d(128, 256, 4, 2, 1, bias=False),
        nn.BatchNorm2d(256),
        nn.LeakyReLU(0.2),
        nn.Conv2d(256, 512, 4, 2, 1, bias=False),
        nn.BatchNorm2d(512),
        nn.LeakyReLU(0.2),
        nn.Conv2d(512, 1, 4, 1, 0, bias=False),
        nn.Flatten(0),
    )


CRITICS: dict[str, Callable[[], torch.nn.Module]] = {
    "mlp3x512": mlp3x512,
    "dcgan32": dcgan32,
    "dcgan64": dcgan64,
}
SAMPLE_SHAPES = {"mlp3x512": (2,), "dcgan32": (3, 32, 32), "dcgan64": (3, 64, 64)}


def critic(name: str, device: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return CRITICS[name]().to(device)


def clip_params(name: str, device: str, dtype: torch.dtype) -> list[torch.Tensor]:
    """A parameter list to clip: a real critic's (DCGAN-64, the 3x512 MLP) or 100 small tensors
    of 64..512 elements, drawn by the shared factory at scale 0.02 so some sit beyond c=0.01."""
    if name == "small100":
        sizes = [64 * (1 + i % 8) for i in range(100)]
    else:
        sizes = [p.numel() for p in CRITICS[name]().parameters()]
    return [
        testing.make((n,), dtype, device, seed=100 + i, scale=0.02) for i, n in enumerate(sizes)
    ]


def clip_label(name: str, params: Sequence[torch.Tensor]) -> str:
    numel = sum(p.numel() for p in params)
    return f"{name} ({len(params)} tensors, {numel / 1e6:.2f}M)"


CLIP_C = 0.01


def clip_fn(impl: str, params: list[torch.Tensor], device: str) -> Callable[[], None]:
    """One clip of the whole list to [-c, c]: the per-parameter loop (the eager baseline, as the
    WGAN reference code writes it), the foreach pair, the reference (which also counts the
    saturated elements, as the fused op does), the compiled loop, or a fused backend."""
    sync = synchronizer(device)
    c = CLIP_C
    if impl == "loop":

        def run() -> None:
            for p in params:
                p.clamp_(-c, c)
            sync()
    elif impl == "foreach":

        def run() -> None:
            torch._foreach_clamp_min_(params, -c)
            torch._foreach_clamp_max_(params, c)
            sync()
    elif impl == "eager+count":

        def run() -> None:
            reference.clip_(params, c)
            sync()
    elif impl == "compile":
        compiled = torch.compile(_clamp_loop, dynamic=False, fullgraph=True)

        def run() -> None:
            compiled(params, c)
            sync()
    else:

        def run() -> None:
            gankernels.ops.clip_(params, c, impl=impl)
            sync()

    return run


def _clamp_loop(params: list[torch.Tensor], c: float) -> None:
    for p in params:
        p.clamp_(-c, c)


# --- whole critic steps -----------------------------------------------------------------------


@dataclass
class Step:
    """A critic step to time, and the tensors alive across steps (parameters, the batch)."""

    run: Callable[[], None]
    persistent: list[torch.Tensor]


def batch_of(model: str, batch: int, device: str, seed: int) -> torch.Tensor:
    return testing.make((batch, *SAMPLE_SHAPES[model]), torch.float32, device, seed=seed)


def wgan_gp_step(impl: str, model: str, batch: int, device: str) -> Step:
    """One WGAN-GP critic step (Adam 1e-4, betas (0.5, 0.9); lambda 0.1 for the toy MLP as in
    gan_toy.py, 10 for images). impl "textbook" is the eager step as the WGAN-GP reference
    code writes it; any other impl is the same step on gankernels' fused API."""
    sync = synchronizer(device)
    netD = critic(model, device)
    opt = torch.optim.Adam(netD.parameters(), lr=1e-4, betas=(0.5, 0.9))
    real = batch_of(model, batch, device, seed=1)
    fake = batch_of(model, batch, device, seed=2)  # G(z).detach(): the generator is not timed
    lam = 0.1 if model == "mlp3x512" else 10.0
    if impl == "textbook":
        one = torch.tensor(1.0, device=device)
        mone = -one

        def run() -> None:
            netD.zero_grad()
            d_real = netD(real).mean()
            d_real.backward(mone)
            d_fake = netD(fake).mean()
            d_fake.backward(one)
            alpha = torch.rand(batch, *([1] * (real.dim() - 1)), device=device)
            alpha = alpha.expand(real.size())
            interpolates = alpha * real + (1 - alpha) * fake
            interpolates.requires_grad_(True)
            disc_interpolates = netD(interpolates)
            gradients = torch.autograd.grad(
                outputs=disc_interpolates,
                inputs=interpolates,
                grad_outputs=torch.ones(disc_interpolates.size(), device=device),
                create_graph=True,
                retain_graph=True,
                only_inputs=True,
            )[0]
            gradients = gradients.view(gradients.size(0), -1)
            gradient_penalty = ((gradients.norm(2, dim=1) - 1) ** 2).mean() * lam
            gradient_penalty.backward()
            opt.step()
            sync()

        return Step(run, [*netD.parameters(), real, fake])

    import gankernels

    backend = _api_backend(impl)

    def run() -> None:
        netD.zero_grad()
        loss = gankernels.discriminator_loss(
            netD(real), netD(fake), kind="wasserstein", impl=backend
        )
        penalty = gankernels.gradient_penalty(netD, real, fake, weight=lam, impl=backend)
        (loss + penalty).backward()
        opt.step()
        sync()

    return Step(run, [*netD.parameters(), real, fake])


def wgan_clip_step(impl: str, model: str, batch: int, device: str) -> Step:
    """One WGAN critic step (RMSprop 5e-5, c = 0.01): clip, then E[D(fake)] - E[D(real)].
    impl "textbook" clips with the per-parameter loop of the WGAN reference code; any other
    impl clips with gankernels.clip_weights_ on that backend."""
    sync = synchronizer(device)
    netD = critic(model, device)
    opt = torch.optim.RMSprop(netD.parameters(), lr=5e-5)
    real = batch_of(model, batch, device, seed=1)
    fake = batch_of(model, batch, device, seed=2)
    one = torch.tensor(1.0, device=device)
    mone = -one
    if impl == "textbook":

        def clip() -> None:
            for p in netD.parameters():
                p.data.clamp_(-CLIP_C, CLIP_C)
    else:
        import gankernels

        backend = _api_backend(impl)

        def clip() -> None:
            gankernels.clip_weights_(netD, CLIP_C, impl=backend)

    def run() -> None:
        clip()
        netD.zero_grad()
        netD(real).mean().backward(mone)
        netD(fake).mean().backward(one)
        opt.step()
        sync()

    return Step(run, [*netD.parameters(), real, fake])


def _api_backend(impl: str) -> str:
    prefix = "gankernels-"
    if not impl.startswith(prefix):
        raise ValueError(f"a gankernels step impl is 'gankernels-<backend>', got {impl!r}")
    return impl[len(prefix) :]


# --- timing and memory ------------------------------------------------------------------------


def rounds_for(seconds_per_call: float, budget: float, quick: bool) -> tuple[int, int]:
    """(rounds, iterations): each round at least ~0.2 ms (timer resolution and call overhead
    amortised), as many rounds as fit in `budget` seconds, between 5 and 200; one in quick
    mode."""
    if quick:
        return 1, 1
    iterations = max(1, math.ceil(2e-4 / max(seconds_per_call, 1e-9)))
    rounds = int(budget / max(seconds_per_call * iterations, 1e-9))
    return min(max(rounds, 5), 200), iterations


def saved_bytes(fn: Callable[[], None], exclude: Sequence[torch.Tensor] = ()) -> int:
    """Bytes of the distinct storages autograd saves for the backward while `fn` runs, other
    than those of `exclude` (the inputs and parameters, which are alive anyway).

    Device independent (saved_tensors_hooks), so it is recorded on the CPU too; the storages
    are held until `fn` returns so that a freed address reused later is not merged with it.
    """
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    held: dict[int, torch.Tensor] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in skip and ptr not in held:
            held[ptr] = t
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    total = sum(t.untyped_storage().nbytes() for t in held.values())
    held.clear()
    return total


def peak_bytes(fn: Callable[[], None], device: str) -> Optional[int]:
    """torch.cuda.max_memory_allocated during `fn` above what was allocated before (GPU only;
    None on the CPU, which has no allocator statistics)."""
    if device != "cuda":
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before
