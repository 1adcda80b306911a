"""WGAN weight clipping (Arjovsky et al. 2017), in one fused call (docs/math.md section 4)."""

from __future__ import annotations

import math
from typing import Callable, Iterable, Optional, Union

import torch
from torch import nn

from .ops import clip_

__all__ = ["NORM_LAYERS", "clip_weights_"]


def _norm_layers() -> tuple[type, ...]:
    names = (
        "BatchNorm1d",
        "BatchNorm2d",
        "BatchNorm3d",
        "SyncBatchNorm",
        "LazyBatchNorm1d",
        "LazyBatchNorm2d",
        "LazyBatchNorm3d",
        "InstanceNorm1d",
        "InstanceNorm2d",
        "InstanceNorm3d",
        "LazyInstanceNorm1d",
        "LazyInstanceNorm2d",
        "LazyInstanceNorm3d",
        "LayerNorm",
        "GroupNorm",
        "RMSNorm",
        "LocalResponseNorm",
    )
    # RMSNorm and the lazy layers are newer than some supported torch versions
    return tuple(getattr(nn, n) for n in names if hasattr(nn, n))


NORM_LAYERS: tuple[type, ...] = _norm_layers()

Skip = Union[None, str, type, tuple, Callable[[str, nn.Parameter], bool]]


def _select(fn: str, module_or_params: object, skip: Skip) -> list[torch.Tensor]:
    """The distinct parameters to clip, in order, after `skip`."""
    if isinstance(module_or_params, nn.Module):
        module = module_or_params
        if skip is None:
            named = list(module.named_parameters())
        elif skip == "norm" or isinstance(skip, (type, tuple)):
            kinds = NORM_LAYERS if skip == "norm" else skip
            if isinstance(kinds, tuple) and not all(isinstance(k, type) for k in kinds):
                raise TypeError(f"{fn}: skip as a tuple must hold module classes, got {skip!r}")
            named = []
            for mod_name, mod in module.named_modules():
                if isinstance(mod, kinds):
                    continue
                prefix = f"{mod_name}." if mod_name else ""
                named.extend((prefix + n, p) for n, p in mod.named_parameters(recurse=False))
        elif callable(skip):
            named = [(n, p) for n, p in module.named_parameters() if not skip(n, p)]
        else:
            raise TypeError(
                f"{fn}: skip must be None, 'norm', a module class (or tuple of them) or a "
                f"callable (name, param) -> bool, got {skip!r}"
            )
        params = [p for _, p in named]
    else:
        if isinstance(module_or_params, torch.Tensor):
            params = [module_or_params]
        elif isinstance(module_or_params, Iterable):
            params = list(module_or_params)
        else:
            raise TypeError(
                f"{fn}: module_or_params must be an nn.Module or an iterable of parameters, got "
                f"{type(module_or_params).__name__}"
            )
        for i, p in enumerate(params):
            if not isinstance(p, torch.Tensor):
                raise TypeError(f"{fn}: params[{i}] must be a tensor, got {type(p).__name__}")
        if skip is not None:
            if not callable(skip) or isinstance(skip, type):
                raise TypeError(
                    f"{fn}: skip={skip!r} needs an nn.Module to find the layers it names; with "
                    f"a list of parameters pass skip=None, or filter the list yourself"
                )
            params = [p for i, p in enumerate(params) if not skip(str(i), p)]
    seen: set[int] = set()
    distinct = []
    for p in params:
        # a tied (shared) parameter is clipped and counted once
        if id(p) not in seen:
            seen.add(id(p))
            distinct.append(p)
    return distinct


def clip_weights_(
    module_or_params: Union[nn.Module, Iterable[torch.Tensor]],
    c: float = 0.01,
    *,
    skip: Skip = None,
    impl: Optional[str] = None,
) -> torch.Tensor:
    """WGAN weight clipping, in place: w <- clamp(w, -c, c) for every selected parameter.

    All parameters go to the fused `clip_` op in one call. Default c = 0.01 (WGAN). Like
    `with torch.no_grad(): p.clamp_(-c, c)` it records no graph and bumps each parameter's
    version counter, so a graph that saved a parameter before the clip refuses its backward.

    Args:
        module_or_params: a module (its parameters, each tied parameter once) or an iterable of
            tensors, all on one device.
        c: the clipping bound, > 0.
        skip: None clips everything (the WGAN paper); "norm" leaves the parameters of
            normalisation layers (BatchNorm, InstanceNorm, LayerNorm, GroupNorm, RMSNorm, see
            NORM_LAYERS) alone; a module class or tuple of classes skips those layers; a callable
            (qualified_name, param) -> bool skips the parameters it returns True for (for a plain
            list, the name is the index).
        impl: "auto" | "cuda" | "triton" | "cpu" | "ref" (None defers to GANKERNELS_IMPL).

    Returns:
        The fraction of the clipped elements that sit at +-c afterwards, the saturation of
        WGAN-GP's Fig. 1b: a 0-dim float32 tensor on the parameters' device. Computing it does
        not synchronise with the host; reading it (`.item()`) does.
    """
    fn = "clip_weights_"
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c) or c <= 0:
        raise ValueError(f"{fn}: c must be a positive finite number, got {c!r}")
    params = _select(fn, module_or_params, skip)
    if not params:
        raise ValueError(f"{fn}: there are no parameters to clip (after skip={skip!r})")
    total = sum(p.numel() for p in params)
    if total == 0:
        return torch.zeros((), dtype=torch.float32, device=params[0].device)
    count = clip_(params, float(c), impl=impl)
    return count.to(torch.float32).div_(total)
