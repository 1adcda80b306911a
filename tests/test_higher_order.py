"""Gradients of gradients of every differentiable op, on every backend.

A backward taken with create_graph=True still runs the backend's fused first-order backward op,
and that op is itself differentiable (through the reference) to any order. Checked here with
gradgradcheck of each op's first derivative, i.e. the second and third derivatives of the op,
in float64.
"""

from __future__ import annotations

import pytest
import torch

from gankernels.ops import adversarial_loss, gp_interpolate, norm_penalty
from gankernels.testing import make, op_qualname, ops_run


def first_derivative(fn, weights):
    """x -> d<fn(x), weights>/dx, itself differentiable: fn's backward recorded in the graph."""

    def grad_of(*inputs):
        out = fn(*inputs)
        out = out if isinstance(out, tuple) else (out,)
        total = sum((o * w).sum() for o, w in zip(out, weights))
        return torch.autograd.grad(total, inputs, create_graph=True)

    return grad_of


def cases(backend: str, device: str):
    """(name, fn, inputs, weights): each op with smooth inputs away from kinks."""
    grad = make((3, 5), torch.float64, device, seed=31)
    grad = grad * torch.tensor([0.3, 1.6, 2.2], dtype=torch.float64, device=device)[:, None]
    real = make((3, 5), torch.float64, device, seed=32)
    fake = make((3, 5), torch.float64, device, seed=33)
    eps = torch.rand(3, dtype=torch.float64, device=device)
    v_r = make((4,), torch.float64, device, seed=34)
    v_g = make((5,), torch.float64, device, seed=35)
    norms_weight = make((3,), torch.float64, device, seed=36)
    x_hat_weight = make((3, 5), torch.float64, device, seed=37)
    return [
        (
            "norm_penalty",
            lambda g: norm_penalty(g, 1.0, 10.0, False, 1.0, impl=backend),
            (grad,),
            (torch.tensor(1.0, dtype=torch.float64), norms_weight),
        ),
        (
            "gp_interpolate",
            lambda r, f, e: gp_interpolate(r, f, e, impl=backend),
            (real, fake, eps),
            (x_hat_weight,),
        ),
        (
            "adversarial_loss",
            lambda r, f: adversarial_loss(r, f, "relativistic", "critic", impl=backend),
            (v_r, v_g),
            (torch.tensor(1.0, dtype=torch.float64),),
        ),
    ]


@pytest.mark.parametrize("op", ["norm_penalty", "gp_interpolate", "adversarial_loss"])
def test_third_order(backend, device, op):
    name, fn, inputs, weights = next(c for c in cases(backend, device) if c[0] == op)
    weights = tuple(w.to(device) for w in weights)
    inputs = tuple(x.detach().requires_grad_() for x in inputs)
    assert torch.autograd.gradgradcheck(first_derivative(fn, weights), inputs)


@pytest.mark.parametrize("op", ["norm_penalty", "gp_interpolate", "adversarial_loss"])
def test_create_graph_backward_runs_the_fused_backward(backend, device, op):
    name, fn, inputs, weights = next(c for c in cases(backend, device) if c[0] == op)
    weights = tuple(w.to(device) for w in weights)
    inputs = tuple(x.detach().requires_grad_() for x in inputs)
    names = ops_run(lambda: first_derivative(fn, weights)(*inputs))
    assert op_qualname(f"{op}_backward", backend) in names, names
