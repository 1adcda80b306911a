"""clip_weights_: WGAN weight clipping in one fused call, with the saturation fraction."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import gankernels
from gankernels import clip_weights_

IMPLS = ("ref", "cpu")


def critic(seed=0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.BatchNorm2d(8),
        nn.LeakyReLU(0.2),
        nn.Conv2d(8, 8, 3),
        nn.GroupNorm(2, 8),
        nn.InstanceNorm2d(8, affine=True),
        nn.Flatten(),
        nn.LayerNorm(8 * 3 * 3),
        nn.Linear(8 * 3 * 3, 1),
    )
    with torch.no_grad():  # move the norm layers' affine parameters away from 1 and 0
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return net


def expected(params, c):
    """Clamped copies and the fraction at +-c, computed one tensor at a time."""
    clamped = [p.detach().clamp(-c, c) for p in params]
    at = sum(int((t.abs() == torch.tensor(c, dtype=t.dtype)).sum()) for t in clamped)
    return clamped, at / sum(t.numel() for t in clamped)


@pytest.mark.parametrize("impl", IMPLS)
def test_clips_every_parameter_and_returns_the_saturated_fraction(impl):
    net = critic()
    want, fraction = expected(list(net.parameters()), 0.01)
    assert 0 < fraction < 1, "the test needs some weights inside and some outside [-c, c]"
    got = clip_weights_(net, 0.01, impl=impl)
    assert isinstance(got, torch.Tensor) and got.shape == () and got.dtype == torch.float32
    assert got.device == next(net.parameters()).device
    torch.testing.assert_close(got.item(), fraction, rtol=1e-6, atol=0)
    for p, w in zip(net.parameters(), want):
        torch.testing.assert_close(p.detach(), w, rtol=0, atol=0)


@pytest.mark.parametrize("impl", IMPLS)
def test_skip_norm_leaves_normalisation_layers_alone(impl):
    net = critic()
    norm_types = (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)
    norm_params = [p for m in net.modules() if isinstance(m, norm_types) for p in m.parameters()]
    other = [
        p
        for m in net.modules()
        if not isinstance(m, norm_types)
        for p in m.parameters(recurse=False)
    ]
    before = [p.detach().clone() for p in norm_params]
    assert any((b.abs() > 0.01).any() for b in before)
    want, fraction = expected(other, 0.01)
    got = clip_weights_(net, 0.01, skip="norm", impl=impl)
    for p, b in zip(norm_params, before):
        assert torch.equal(p.detach(), b)
    for p, w in zip(other, want):
        assert torch.equal(p.detach(), w)
    torch.testing.assert_close(got.item(), fraction, rtol=1e-6, atol=0)


def test_skip_by_class_and_by_predicate():
    net = critic()
    bn_before = [p.detach().clone() for p in net[1].parameters()]
    clip_weights_(net, 0.01, skip=nn.BatchNorm2d, impl="ref")
    assert all(torch.equal(p.detach(), b) for p, b in zip(net[1].parameters(), bn_before))
    assert net[4].weight.abs().max() <= 0.01  # the GroupNorm was clipped

    net = critic()
    biases = {n: p.detach().clone() for n, p in net.named_parameters() if n.endswith("bias")}
    clip_weights_(net, 0.01, skip=lambda name, p: name.endswith("bias"), impl="ref")
    for n, p in net.named_parameters():
        if n.endswith("bias"):
            assert torch.equal(p.detach(), biases[n])
        else:
            assert p.abs().max() <= 0.01


def test_a_list_of_parameters_and_tied_parameters_once():
    shared = nn.Parameter(torch.tensor([0.5, -0.5, 0.001, 0.002]))
    other = nn.Parameter(torch.tensor([0.003, 0.004]))
    got = clip_weights_([shared, other, shared], 0.01, impl="ref")
    assert got.item() == pytest.approx(2 / 6)  # counted once: 2 at +-c out of 6 elements
    assert shared.tolist() == pytest.approx([0.01, -0.01, 0.001, 0.002])


def test_mixed_dtypes_and_nan():
    a = torch.tensor([1.0, float("nan"), 0.0])
    b = torch.tensor([-1.0, 0.001], dtype=torch.float16)
    got = clip_weights_([a, b], 0.01, impl="ref")
    assert torch.isnan(a[1]) and a[0] == 0.01
    assert b[0] == torch.tensor(-0.01, dtype=torch.float16)
    assert got.item() == pytest.approx(2 / 5)


def test_default_c_is_the_wgan_value():
    w = nn.Parameter(torch.tensor([1.0, -1.0, 0.0]))
    clip_weights_([w], impl="ref")
    assert w.tolist() == pytest.approx([0.01, -0.01, 0.0])


def test_exported():
    assert "clip_weights_" in gankernels.__all__


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("c", [0, -0.01, float("inf"), float("nan"), True, "0.01"])
def test_bad_c(c):
    with pytest.raises(ValueError, match=r"clip_weights_: c must be a positive finite number"):
        clip_weights_(critic(), c, impl="ref")


def test_skip_norm_needs_a_module():
    with pytest.raises(TypeError, match=r"clip_weights_: skip='norm' needs an nn.Module"):
        clip_weights_(list(critic().parameters()), skip="norm", impl="ref")


def test_bad_skip():
    with pytest.raises(
        TypeError,
        match=r"clip_weights_: skip must be None, 'norm', a module "
        r"class",
    ):
        clip_weights_(critic(), skip="batchnorm", impl="ref")
    with pytest.raises(TypeError, match=r"skip as a tuple must hold module classes"):
        clip_weights_(critic(), skip=(nn.LayerNorm, "x"), impl="ref")


def test_nothing_to_clip():
    with pytest.raises(ValueError, match=r"clip_weights_: there are no parameters to clip"):
        clip_weights_(nn.Sequential(nn.LayerNorm(4)), skip="norm", impl="ref")
    with pytest.raises(ValueError, match=r"there are no parameters to clip"):
        clip_weights_([], impl="ref")


def test_bad_params():
    with pytest.raises(TypeError, match=r"clip_weights_: params\[1\] must be a tensor, got float"):
        clip_weights_([torch.zeros(2), 0.5], impl="ref")
    with pytest.raises(TypeError, match=r"module_or_params must be an nn.Module or an iterable"):
        clip_weights_(3, impl="ref")
    with pytest.raises(ValueError, match=r"clip_: every tensor in params must be on one device"):
        clip_weights_([torch.zeros(2), torch.zeros(2, device="meta")], impl="ref")
