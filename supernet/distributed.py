"""Data-parallel training under torchrun, from the same entry point as one process.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; without them the world is one process and nothing
is initialised. Backend: gloo on CPU, nccl on GPU. Every rank draws the same subnets (seeded by
the step) and takes its own equal share of each batch; gradients are averaged with all_reduce
before clipping, so W processes with batch b each compute the step of one process with W * b.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from supernet.errors import SupernetError


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    device: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_world(device: str) -> World:
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(0, 1, device)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return World(rank, size, device)


def shard(indices: list[int], world: World) -> list[int]:
    """This rank's equal share of a global batch."""
    if len(indices) % world.size:
        raise SupernetError(f"train.batch_size={len(indices)} does not split over "
                            f"{world.size} processes; use a multiple of {world.size}")
    share = len(indices) // world.size
    return indices[world.rank * share:(world.rank + 1) * share]


def average_gradients(parameters: list[torch.nn.Parameter], world: World) -> None:
    """Mean of every rank's gradients. Ranks train the same subnets, so the same parameters
    have gradients on every rank; those without one were unused everywhere and stay None."""
    if world.size == 1:
        return
    for param in parameters:
        if param.grad is not None:
            dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)
            param.grad.div_(world.size)


def average_metrics(metrics: dict[str, float], world: World) -> dict[str, float]:
    if world.size == 1:
        return metrics
    names = sorted(metrics)
    # On the training device: nccl reduces only GPU tensors.
    values = torch.tensor([metrics[name] for name in names], dtype=torch.float64,
                          device=world.device)
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return {name: float(value) / world.size for name, value in zip(names, values.tolist())}


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def close(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
