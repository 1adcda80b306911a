"""Triton kernels for every gankernels op: one file per op with its kernels, its launcher and the
definition of its ops (`gankernels::<op>_triton`, and `<op>_backward_triton` for the
differentiable ones).

A leaf, like csrc/cuda/: it imports nothing from the rest of gankernels. The ops it defines carry
their fake kernels (`_common.define`) and nothing else; gankernels/ops/_triton.py gives them the
autograd that the compiled ops have. Call them through `gankernels.ops.registry.backend_op(name,
"triton")`, which loads both.

Nothing here imports triton until an op is first asked for, so `import gankernels` stays quiet
and fast on machines without a GPU. Under TRITON_INTERPRET=1 the kernels run on CPU tensors.
"""

from __future__ import annotations

from typing import Callable

OPS = ("gp_interpolate", "norm_penalty", "adversarial_loss", "clip_", "ema_", "mmd2")


def op(name: str) -> Callable:
    """torch.ops.gankernels.<name>_triton, defining it (and its backward op) on first use.

    Plain import statements rather than importlib, so that torch.compile can trace a first use
    inside a compiled function (dynamo runs an import statement; it skips importlib).
    """
    if name == "gp_interpolate":
        from . import gp_interpolate  # noqa: F401
    elif name == "norm_penalty":
        from . import norm_penalty  # noqa: F401
    elif name == "adversarial_loss":
        from . import adversarial_loss  # noqa: F401
    elif name == "clip_":
        from . import clip  # noqa: F401
    elif name == "ema_":
        from . import ema  # noqa: F401
    elif name == "mmd2":
        from . import mmd2  # noqa: F401
    else:
        raise ValueError(f"no Triton op {name!r}; expected one of {', '.join(OPS)}")
    import torch

    return getattr(torch.ops.gankernels, f"{name}_triton")
