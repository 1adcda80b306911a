"""The small models: shapes for each kind of data, no normalisation in the critics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gankernels.train.models import FEATURES, ModelSpec, build_models


@pytest.mark.parametrize("shape, conv", [((2,), False), ((1, 8, 8), True), ((3, 5, 7), False)])
@pytest.mark.parametrize("critic_kind", ["score", "autoencoder", "features"])
def test_shapes_and_no_batchnorm(shape, conv, critic_kind):
    spec = ModelSpec(shape, z_dim=4, hidden=32, depth=2, critic_kind=critic_kind, bounded=True)
    assert spec.is_conv == conv
    g, c = build_models(spec)
    x = g(torch.randn(5, 4))
    assert x.shape == (5, *shape) and x.abs().max() <= 1  # bounded: tanh output
    out = c(x)
    expected = {"score": (5,), "autoencoder": x.shape, "features": (5, FEATURES)}[critic_kind]
    assert out.shape == expected
    norms = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.InstanceNorm2d, nn.GroupNorm)
    assert not any(isinstance(m, norms) for m in c.modules())
    # per-sample independence, which a per-sample gradient penalty needs
    assert torch.allclose(c(x[:1]), out[:1], atol=1e-6)


def test_spec_round_trip_and_errors():
    spec = ModelSpec((1, 8, 8), 3, 16, 2, "autoencoder")
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="critic_kind must be one of"):
        build_models(ModelSpec((2,), 2, 8, 1, "patch"))
    with pytest.raises(ValueError, match="z_dim, hidden, generator_hidden and depth must be >= 1"):
        build_models(ModelSpec((2,), 0, 8, 1))
