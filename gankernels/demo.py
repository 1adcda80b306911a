"""`python -m gankernels demo`: one WGAN-GP penalty through the fused ops, against eager."""

from __future__ import annotations

import torch
import torch.utils.benchmark as benchmark

from . import reference
from .info import format_info
from .ops import auto_choice, gp_interpolate, norm_penalty


def _penalty(critic, real, fake, eps, interpolate, penalty):
    x_hat = interpolate(real, fake, eps).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    loss, _ = penalty(grad)
    loss.backward()
    return loss


def run_demo(batch: int = 256, dim: int = 2, width: int = 512) -> int:
    torch.manual_seed(0)
    critic = torch.nn.Sequential(
        torch.nn.Linear(dim, width),
        torch.nn.ReLU(),
        torch.nn.Linear(width, width),
        torch.nn.ReLU(),
        torch.nn.Linear(width, 1),
    )
    real, fake, eps = torch.randn(batch, dim), torch.randn(batch, dim), torch.rand(batch)

    def fused():
        return _penalty(
            critic, real, fake, eps, lambda *a: gp_interpolate(*a), lambda g: norm_penalty(g)
        )

    def eager():
        return _penalty(
            critic, real, fake, eps, reference.gp_interpolate, lambda g: reference.norm_penalty(g)
        )

    critic.zero_grad()
    loss_fused = fused().item()
    grads_fused = [p.grad.clone() for p in critic.parameters()]
    critic.zero_grad()
    loss_eager = eager().item()
    same = all(
        torch.allclose(p.grad, g, rtol=1e-4, atol=1e-6)
        for p, g in zip(critic.parameters(), grads_fused)
    )

    print(format_info())
    print(
        f"\nWGAN-GP critic penalty, 3x{width} MLP critic, B = {batch}, impl=auto -> "
        f"{auto_choice('cpu')} on CPU"
    )
    print(
        f"penalty: fused {loss_fused:.6f}, eager {loss_eager:.6f}; "
        f"parameter gradients equal: {same}"
    )
    timings = {}
    for name, fn in (("fused", fused), ("eager", eager)):
        timer = benchmark.Timer("fn(); critic.zero_grad()", globals={"fn": fn, "critic": critic})
        timings[name] = timer.blocked_autorange(min_run_time=1.0).median
        print(f"{name:>6}: {timings[name] * 1e6:9.1f} us per penalty step (forward + backward)")
    print(f"speed-up over eager: {timings['eager'] / timings['fused']:.2f}x")
    return 0 if same and abs(loss_fused - loss_eager) <= 1e-4 * max(1.0, abs(loss_eager)) else 1
