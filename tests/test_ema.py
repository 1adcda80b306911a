"""ema_: the moving average of a generator's weights. The op's contract (reference values, opcheck,
torch.compile, bad input, determinism) is tests/test_op_contract.py; here, the module-level API
and the edge cases."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import device_for
from torch import nn

import gankernels
from gankernels import ema_
from gankernels.testing import assert_close, make


def generator(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4), nn.Tanh()
    )


@pytest.mark.parametrize("decay", (0.999, 0.5))
def test_modules_average_parameters_and_copy_buffers(backend, decay):
    device = device_for(backend)
    G = generator(0).to(device)
    G.train()
    G(torch.randn(32, 8, device=device))  # moves BatchNorm's running statistics
    G_ema = copy.deepcopy(generator(1)).to(device)
    before = {n: p.detach().clone() for n, p in G_ema.named_parameters()}
    ema_(G_ema, G, decay, impl=backend)
    for name, p in G_ema.named_parameters():
        s = dict(G.named_parameters())[name]
        want = before[name] + (1 - decay) * (s.detach() - before[name])
        assert_close(p, want, label=name)
    for name, b in G_ema.named_buffers():
        assert torch.equal(b, dict(G.named_buffers())[name]), name


def test_decay_0_copies_and_decay_1_keeps(backend):
    device = device_for(backend)
    t = [make((5, 7), torch.float32, device, seed=1), make((3,), torch.float16, device, seed=2)]
    s = [make((5, 7), torch.float32, device, seed=3), make((3,), torch.float16, device, seed=4)]
    kept = [x.clone() for x in t]
    ema_(t, s, 1.0, impl=backend)
    assert all(torch.equal(a, b) for a, b in zip(t, kept))
    ema_(t, s, 0.0, impl=backend)
    assert all(torch.equal(a, b) for a, b in zip(t, s))


def test_layouts_empty_and_mixed_dtypes(backend):
    """A strided target slice, a transposed source, an empty tensor and several dtypes in one
    list; nothing outside the slice is touched, the sources are left as they were."""
    device = device_for(backend)
    base = make((6, 40), torch.float32, device, seed=5)
    outside = base.clone()
    target = [
        base[::2, 5:30],
        make((4, 9), torch.bfloat16, device, seed=6),
        torch.empty(0, device=device),
        make((11,), torch.float64, device, seed=7),
    ]
    source = [
        make((25, 3), torch.float32, device, seed=8).t(),
        make((4, 9), torch.bfloat16, device, seed=9),
        torch.empty(0, device=device),
        make((11,), torch.float64, device, seed=10),
    ]
    sources = [x.clone() for x in source]
    want = [t.clone() for t in target]
    gankernels.reference.ema_(want, source, 0.75)
    ema_(target, source, 0.75, impl=backend)
    for i, (t, w) in enumerate(zip(target, want)):
        assert_close(t, w, label=f"target[{i}]")
    mask = torch.ones_like(base, dtype=torch.bool)
    mask[::2, 5:30] = False
    assert torch.equal(base[mask], outside[mask])
    assert all(torch.equal(a, b) for a, b in zip(source, sources))


def test_records_no_graph_and_bumps_versions(backend):
    device = device_for(backend)
    G, G_ema = generator(0).to(device), generator(1).to(device)
    p = next(G_ema.parameters())
    version = p._version
    y = (p * p).sum()  # a graph that saved p before the update
    ema_(G_ema, G, impl=backend)
    assert p.grad_fn is None and p.requires_grad
    assert p._version > version
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_matches_foreach_lerp_on_the_cpu():
    target = [make((n,), torch.float32, "cpu", seed=n) for n in (3, 1000, 70001)]
    source = [make((n,), torch.float32, "cpu", seed=n + 1) for n in (3, 1000, 70001)]
    theirs = [t.clone() for t in target]
    torch._foreach_lerp_(theirs, source, 0.001)
    ema_(target, source, 0.999, impl="cpu")
    for a, b in zip(target, theirs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_bad_modules_are_named():
    with pytest.raises(ValueError, match=r"ema_: target and source must have the same parameters"):
        ema_(nn.Linear(3, 4), nn.Sequential(nn.Linear(3, 4)))
    with pytest.raises(TypeError, match=r"ema_: target and source must both be modules or both"):
        ema_(nn.Linear(3, 4), list(nn.Linear(3, 4).parameters()))
    with pytest.raises(
        ValueError,
        match=r"ema_: source\[0\] must have the same shape as "
        r"target\[0\]",
    ):
        ema_(nn.Linear(3, 4), nn.Linear(3, 5))
    with pytest.raises(ValueError, match=r"ema_: decay must be a number in \[0, 1\], got 2"):
        ema_(nn.Linear(3, 4), nn.Linear(3, 4), decay=2)


def test_exported():
    assert "ema_" in gankernels.__all__ and gankernels.ema_ is ema_
