"""The Triton ops, complete: importing this module defines every `gankernels::<op>_triton` op
(gankernels/triton/, a leaf) and attaches to each differentiable one the autograd its compiled op
has (registry.attach_autograd, from the op's spec in gankernels/ops/<op>.py).

Registration order, all of it in this package: gankernels/ops/<op>.py registers the spec when
gankernels is imported; this module runs on the first Triton call (registry.backend_op). It is a
module, imported with an import statement, rather than a function, so that a first call inside a
function torch.compile traces still runs it once and eagerly: dynamo executes imports.
"""

from __future__ import annotations

import torch

from .. import triton as kernels
from .registry import SPECS, attach_autograd

for _name in kernels.OPS:
    kernels.op(_name)
    if SPECS[_name].make_backward is not None:
        attach_autograd(
            _name,
            f"gankernels::{_name}_triton",
            getattr(torch.ops.gankernels, f"{_name}_backward_triton"),
        )
