"""Multi-process training under ``torchrun``: the process group, shared starting weights,
gradient averaging and decisions every rank takes together.

Averaging is done on the method's parameters directly instead of wrapping the model in
DistributedDataParallel, because methods call parts of the model (DMUE's branches, LDLVA's
calibration MLP) outside ``forward``; the arithmetic is DDP's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from affectlab.engine.config import RunConfig

__all__ = ["Dist", "agree", "average_gradients", "barrier", "broadcast_state", "close",
           "init_distributed"]


@dataclass
class Dist:
    """This process's place: world size, global rank, rank on its machine."""

    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(config: RunConfig) -> Dist:
    """Join the process group when ``WORLD_SIZE`` > 1 (nccl on CUDA, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Dist(world=dist.get_world_size(), rank=dist.get_rank(), local_rank=local_rank)


def close(d: Dist) -> None:
    if d.active and dist.is_initialized():
        dist.destroy_process_group()


def barrier(d: Dist) -> None:
    if d.active:
        dist.barrier()


def broadcast_state(method, d: Dist) -> None:
    """Every rank starts from rank 0's parameters and buffers."""
    if not d.active:
        return
    for tensor in method.state_dict().values():
        if isinstance(tensor, torch.Tensor):
            dist.broadcast(tensor, src=0)


def agree(flag: bool, d: Dist) -> bool:
    """Rank 0's ``flag`` on every rank (every rank must leave the loop at the same step)."""
    flag = bool(flag) if d.main else False
    if d.active:
        t = torch.tensor([1.0 if flag else 0.0])
        dist.broadcast(t, src=0)
        flag = bool(t.item())
    return flag


def average_gradients(params: list[torch.nn.Parameter], d: Dist) -> None:
    """All-reduce (mean) the gradients of ``params`` in one flat buffer. A parameter without a
    gradient on this rank contributes zeros; it keeps ``grad=None`` only if no rank has one, so
    every rank makes the same optimiser step."""
    if not params:
        return
    flats, has = [], []
    for p in params:
        flats.append(p.grad.reshape(-1) if p.grad is not None
                     else torch.zeros(p.numel(), device=p.device, dtype=p.dtype))
        has.append(1.0 if p.grad is not None else 0.0)
    flat = torch.cat(flats + [torch.tensor(has, device=params[0].device, dtype=flats[0].dtype)])
    dist.all_reduce(flat)
    flat /= d.world
    offset = 0
    for p in params:
        n = p.numel()
        chunk = flat[offset:offset + n].view_as(p).to(p.dtype)
        offset += n
        if p.grad is not None:
            p.grad.copy_(chunk)
        else:
            p.grad = chunk.clone()
    for p, h in zip(params, flat[offset:].tolist(), strict=True):
        if h == 0.0:
            p.grad = None
