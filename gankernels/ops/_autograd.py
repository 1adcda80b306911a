"""Second-order support shared by every op's autograd registration.

A fused backward kernel computes first derivatives only. Each `<op>_backward` op therefore has
an autograd of its own (gankernels/ops/registry.py) that differentiates the same backward
computed through the reference, kept in the graph: a `create_graph=True` pass runs the fused
backward, and what it returns is differentiable to any order (docs/math.md section 2).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch


def differentiable_backward(
    fn: Callable[..., object],
    inputs: Sequence[torch.Tensor],
    grad_outputs: Sequence[Optional[torch.Tensor]],
) -> tuple[Optional[torch.Tensor], ...]:
    """Vector-Jacobian product of `fn` at `inputs` with `grad_outputs`, kept in the graph.

    An input that does not require grad becomes a fresh leaf, so its gradient is still a
    function of the others and of `grad_outputs`. Outputs that are None, or that do not depend
    on the inputs, are left out.
    """
    with torch.enable_grad():
        leaves = [x if x.requires_grad else x.detach().requires_grad_() for x in inputs]
        outputs = fn(*leaves)
        if not isinstance(outputs, (tuple, list)):
            outputs = (outputs,)
        used = [
            (o, g)
            for o, g in zip(outputs, grad_outputs)
            if g is not None and o is not None and o.requires_grad
        ]
        return torch.autograd.grad(
            [o for o, _ in used],
            leaves,
            [g for _, g in used],
            create_graph=True,
            allow_unused=True,
        )
