"""The Triton ops, complete: importing this module defines every `gankernels::<op>_triton` op
(gankernels/triton/, a leaf), gives each op the argument check of gankernels/ops/_checks.py
(run inside the op, as the compiled ops run theirs) and attaches to each differentiable one the
autograd its compiled op has (registry.attach_autograd, from the op's spec in
gankernels/ops/<op>.py).

Registration order, all of it in this package: gankernels/ops/<op>.py registers the spec when
gankernels is imported; this module runs on the first Triton call (registry.backend_op). It is a
module, imported with an import statement, rather than a function, so that a first call inside a
function torch.compile traces still runs it once and eagerly: dynamo executes imports.
"""

from __future__ import annotations

import torch

from .. import triton as kernels
from ..triton._common import CHECKS
from . import _checks
from .registry import SPECS, attach_autograd

# Each forward op's check, from the op's own arguments.
CHECKS.update(
    {
        "gankernels::gp_interpolate_triton": _checks.check_gp_interpolate,
        "gankernels::norm_penalty_triton": lambda grad, target, weight, one_sided, inv_scale: (
            _checks.check_norm_penalty(grad, target, weight, inv_scale)
        ),
        "gankernels::adversarial_loss_triton": lambda *args: _checks.check_adversarial_loss(
            *args[:4], *args[8:]
        ),
        "gankernels::clip__triton": _checks.check_clip,
        "gankernels::ema__triton": _checks.check_ema,
        "gankernels::mmd2_triton": _checks.check_mmd2,
        # The backward ops: autograd calls them with checked arguments, a user may not.
        "gankernels::gp_interpolate_backward_triton": _checks.check_gp_interpolate_backward,
        "gankernels::norm_penalty_backward_triton": _checks.check_norm_penalty_backward,
        "gankernels::adversarial_loss_backward_triton": _checks.check_adversarial_loss_backward,
        "gankernels::mmd2_backward_triton": _checks.check_mmd2_backward,
    }
)

for _name in kernels.OPS:
    kernels.op(_name)
    if SPECS[_name].make_backward is not None:
        attach_autograd(
            _name,
            f"gankernels::{_name}_triton",
            getattr(torch.ops.gankernels, f"{_name}_backward_triton"),
        )
