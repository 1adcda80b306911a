"""The trainer for a `System` (gankernels.variants): a variant with its own networks and
optimisers, on data with labels, pairs or a second domain.

What differs from `Trainer`: the networks come from `System.build`, one optimiser per
`System.optimizers()` entry, and a generator step is `System.train_step(context)`, which draws
batches and steps optimisers through the context. Under torchrun the networks are not wrapped in
DistributedDataParallel (a system may run a network forward several times per update, or under
another network's loss); `update` averages the group's gradients over the processes itself, one
all-reduce per optimiser step, and the parameters start equal (same seed, then a broadcast from
rank 0). Checkpoints hold every network and optimiser under "networks" / "optimizers".
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Optional

import torch
import torch.distributed as dist
from torch import nn

from ..averaging import ema_
from ..variants import RATES, Batch, System
from .distributed import sync_state
from .trainer import Trainer, _make_optimizer


class _Context:
    """The `StepContext` of one generator step."""

    def __init__(self, trainer: SystemTrainer) -> None:
        self._trainer = trainer
        self.nets = trainer.nets
        self.state = trainer.state
        self.impl = trainer.impl
        self.defaults = trainer.variant.defaults
        self.step = trainer.step
        self.steps = trainer.cfg.steps

    def batch(self) -> Batch:
        return self._trainer._system_batch()

    def update(self, group: str, loss: torch.Tensor) -> None:
        self._trainer._update(group, loss)


class SystemTrainer(Trainer):
    """One run of a `System`; `run()` trains to `steps` generator steps."""

    variant: System

    def _build(self) -> None:
        system = self.variant
        system.check_data(self.dataset)
        nets = system.build(self.spec, self.dataset)
        if not isinstance(nets, dict) or not nets:
            raise TypeError(f"variant {system.name!r}: build must return a non-empty dict")
        for name, net in nets.items():
            if not isinstance(net, nn.Module):
                raise TypeError(
                    f"variant {system.name!r}: build returned {type(net).__name__} for "
                    f"{name!r}, not an nn.Module"
                )
        self.nets: dict[str, nn.Module] = {k: v.to(self.device) for k, v in nets.items()}
        self.groups = dict(system.optimizers())
        d = system.defaults
        self.opts: dict[str, torch.optim.Optimizer] = {}
        self.group_params: dict[str, list[nn.Parameter]] = {}
        for name, group in self.groups.items():
            unknown = [n for n in group.networks if n not in self.nets]
            if unknown or group.rate not in RATES or not group.networks:
                raise ValueError(
                    f"variant {system.name!r}: optimiser {name!r} must name some of the networks "
                    f"{sorted(self.nets)} and a rate in {RATES}, got {group}"
                )
            params = [p for n in group.networks for p in self.nets[n].parameters()]
            lr = d.lr_critic if group.rate == "critic" else d.lr_generator
            self.group_params[name] = params
            self.opts[name] = _make_optimizer(d.optimizer, params, lr, d.betas)
        self.generator_ema: Optional[nn.Module] = None
        if self.cfg.ema_decay:
            if "generator" not in self.nets:
                raise ValueError(
                    f"ema_decay: variant {system.name!r} has no network called 'generator' to "
                    f"average"
                )
            self.generator_ema = copy.deepcopy(self.nets["generator"]).requires_grad_(False)

    def _load_shard(self) -> None:
        shard = self.dataset.shard_all(self.d.rank, self.d.world)
        if shard.data.shape[0] == 0:
            raise ValueError(
                f"data: {self.dataset.data.shape[0]} samples cannot be split over "
                f"{self.d.world} processes"
            )
        big = shard.data.numel() * shard.data.element_size() > 512 * 2**20
        if not big:
            shard = dataclasses.replace(
                shard,
                data=shard.data.to(self.device),
                labels=None if shard.labels is None else shard.labels.to(self.device),
                second=None if shard.second is None else shard.second.to(self.device),
            )
        self.shard_set = shard
        self.shard = shard.data

    def _wrap(self) -> None:
        if self.d.active:
            for net in self.nets.values():
                for tensor in list(net.parameters()) + list(net.buffers()):
                    dist.broadcast(tensor.data, 0)

    def networks(self) -> dict[str, nn.Module]:
        return dict(self.nets)

    def _load_models(self, saved: dict[str, Any]) -> None:
        if "networks" not in saved or set(saved["networks"]) != set(self.nets):
            raise ValueError(
                f"resume: the checkpoint's networks {sorted(saved.get('networks') or [])} are "
                f"not this variant's {sorted(self.nets)}"
            )
        for name, net in self.nets.items():
            net.load_state_dict(saved["networks"][name])
        for name, opt in self.opts.items():
            opt.load_state_dict(saved["optimizers"][name])
        if self.generator_ema is not None:
            self.generator_ema.load_state_dict(
                saved.get("generator_ema") or saved["networks"]["generator"]
            )

    def _models_payload(self) -> dict[str, Any]:
        return {
            "networks": {k: v.state_dict() for k, v in self.nets.items()},
            "optimizers": {k: v.state_dict() for k, v in self.opts.items()},
            "generator_ema": (
                self.generator_ema.state_dict() if self.generator_ema is not None else None
            ),
        }

    # -- one step --------------------------------------------------------------------------------

    def _system_batch(self) -> Batch:
        b, data = self.cfg.batch_size, self.shard_set
        n = data.data.shape[0]
        where = data.data.device

        def rows(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            return t[idx.to(where)].to(self.device, non_blocking=True)

        idx = torch.randint(n, (b,), generator=self.data_gen)
        x = rows(data.data, idx)
        labels = None if data.labels is None else rows(data.labels, idx)
        second = None
        if "pairs" in self.variant.needs:
            second = rows(data.second, idx)
        elif "domains" in self.variant.needs:
            second = rows(data.second, torch.randint(n, (b,), generator=self.data_gen))
        z = torch.randn(b, self.cfg.z_dim, generator=self.noise_gen, device=self.device)
        return Batch(x, labels, second, z)

    def _update(self, group: str, loss: torch.Tensor) -> None:
        if group not in self.opts:
            raise KeyError(
                f"variant {self.variant.name!r} has no optimiser {group!r}; "
                f"it has {sorted(self.opts)}"
            )
        opt, params = self.opts[group], self.group_params[group]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.d.active:
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            flat /= self.d.world
            offset = 0
            for p in params:
                p.grad = flat[offset : offset + p.numel()].view_as(p).clone()
                offset += p.numel()
        opt.step()
        if self.groups[group].rate == "critic":
            self.state["step"] = self.state["step"] + 1

    def train_step(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, list[torch.Tensor]]]:
        self._set_lr()
        loss_c, loss_g, logs = self.variant.train_step(_Context(self))
        sync_state(self.state, self.d)
        if self.generator_ema is not None:
            ema_(self.generator_ema, self.nets["generator"], self.cfg.ema_decay, impl=self.impl)
        return loss_c, loss_g, {k: [v] for k, v in (logs or {}).items()}

    def _set_lr(self) -> None:
        frac = 1.0 - self.step / self.cfg.steps if self.cfg.lr_decay == "linear" else 1.0
        d = self.variant.defaults
        for name, opt in self.opts.items():
            base = d.lr_critic if self.groups[name].rate == "critic" else d.lr_generator
            for group in opt.param_groups:
                group["lr"] = base * frac

    # -- evaluation ------------------------------------------------------------------------------

    def _eval_nets(self) -> dict[str, nn.Module]:
        nets = dict(self.nets)
        if self.generator_ema is not None:
            nets["generator"] = self.generator_ema
        return nets

    def generate(self, n: int, seed: int) -> torch.Tensor:
        with _eval_mode(self._eval_nets()) as nets:
            return self.variant.generate(nets, self.spec, self.dataset, n, seed, self.device)

    def _metrics(self, samples: torch.Tensor, seed: int) -> dict[str, float]:
        with _eval_mode(self._eval_nets()) as nets:
            return self.variant.evaluate(
                nets, self.spec, self.dataset, self._reference, self.cfg.n_eval, seed, self.device
            )


class _eval_mode:
    """Networks in eval mode and without gradients for the block; their modes are restored."""

    def __init__(self, nets: dict[str, nn.Module]) -> None:
        self.nets = nets
        self.modes = {k: v.training for k, v in nets.items()}
        self.grad = torch.no_grad()

    def __enter__(self) -> dict[str, nn.Module]:
        self.grad.__enter__()
        for net in self.nets.values():
            net.eval()
        return self.nets

    def __exit__(self, *exc: Any) -> None:
        for name, net in self.nets.items():
            net.train(self.modes[name])
        self.grad.__exit__(*exc)
