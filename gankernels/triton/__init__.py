"""Triton kernels for every gankernels op, one file per op (kernels, launcher, registration).

Nothing here imports triton until an op is first asked for, so `import gankernels` stays quiet
and fast on machines without a GPU. Under TRITON_INTERPRET=1 the kernels run on CPU tensors.
"""

from __future__ import annotations

from typing import Callable


def op(name: str) -> Callable:
    """torch.ops.gankernels.<name>_triton, registering it (and its autograd) on first use.

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
    else:
        raise ValueError(
            f"no Triton op {name!r}; expected gp_interpolate, norm_penalty, adversarial_loss "
            "or clip_"
        )
    import torch

    return getattr(torch.ops.gankernels, f"{name}_triton")
