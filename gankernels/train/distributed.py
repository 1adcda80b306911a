"""The trainer under `torchrun --nproc_per_node N`: rank and world from the environment, the
device per rank, the process group (gloo on CPU, NCCL on GPU), DistributedDataParallel wrapping
and the few collectives the trainer needs beyond DDP's gradient averaging.

With WORLD_SIZE unset or 1 every helper here is a no-op (or its one-process answer) and
torch.distributed is never initialised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owned: bool = False  # this trainer created the process group and destroys it

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def dist_from_env() -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    return Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(name: str, d: Dist) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was asked for, but torch sees no CUDA GPU")
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        index = d.local_rank % max(torch.cuda.device_count(), 1)
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device("cpu")


def init_dist(d: Dist, device: torch.device) -> None:
    if not d.active:
        return
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        d.owned = True
    if dist.get_world_size() != d.world or dist.get_rank() != d.rank:
        raise RuntimeError("the torch.distributed group does not match RANK / WORLD_SIZE")


def close_dist(d: Dist, wait_for_peers: bool = True) -> None:
    """Destroy the process group if this trainer created it; with `wait_for_peers`, after a
    barrier, so that no rank tears gloo down while another still has work in flight (a rank
    that exited first was seen to abort its peer: "terminate called without an active
    exception"). A failing run passes False: its peers may be gone."""
    if d.owned and dist.is_initialized():
        if wait_for_peers and dist.get_world_size() > 1:
            dist.barrier()
        dist.destroy_process_group()
        d.owned = False


def wrap_ddp(module: nn.Module, device: torch.device, d: Dist) -> nn.Module:
    """`module` in DistributedDataParallel under torchrun, else `module` itself."""
    if not d.active:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return DDP(module, device_ids=ids)


def sync_state(state: dict[str, Any], d: Dist) -> None:
    """Average the variant's floating-point state over the ranks (BEGAN's k_t is updated from
    each rank's own losses; without this the ranks' states would drift apart)."""
    if not d.active:
        return
    for value in state.values():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
            value.div_(d.world)


def any_rank(flag: torch.Tensor, d: Dist) -> bool:
    """Whether the one-element boolean `flag` is true on any rank (one host sync; every rank
    gets the same answer)."""
    if not d.active:
        return bool(flag.item())
    flag = flag.to(torch.int64)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def gather_objects(obj: Any, d: Dist) -> list[Any]:
    """Every rank's `obj`, in rank order (`[obj]` in one process)."""
    if not d.active:
        return [obj]
    gathered: list[Any] = [None] * d.world
    dist.all_gather_object(gathered, obj)
    return gathered
