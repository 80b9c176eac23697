"""Multi-process training on PyTorch's own engine: ``torchrun`` + ``DistributedDataParallel``.

seglab never starts worker processes itself. ``torchrun`` (``python -m torch.distributed.run``)
does, one per GPU, and gives each worker ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT`` in its environment. This module turns that environment into a
process group (NCCL on CUDA, gloo on CPU) and holds the few collective operations the Trainer
needs, so :mod:`seglab.engine.trainer` reads the same with one process or many.

Conventions:

- ``batch_size`` is **per process**, as in torchvision's reference scripts: N processes take
  N x batch_size images per optimiser step, and an epoch has about 1/N as many steps.
- Rank 0 (the *main* process) is the only one that writes the run folder; every decision that
  must be the same everywhere (stop, time budget, non-finite loss) is taken once and shared.
- Training shards with :class:`torch.utils.data.DistributedSampler` (it pads by repeating
  samples so all ranks take as many steps); evaluation shards with :class:`ShardSampler` (no
  padding) and sums the confusion matrices, so metrics equal a single-process evaluation.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler, Sampler

from seglab.errors import ConfigError

__all__ = [
    "World",
    "ShardSampler",
    "available_devices",
    "broadcast_buffers",
    "broadcast_from_main",
    "broadcast_object",
    "current_world",
    "launch_command",
    "launched_by_torchrun",
    "launcher_pid",
    "max_processes",
    "mean_over_processes",
    "process_device",
    "process_group",
    "setup",
    "cleanup",
    "train_sampler",
    "wrap_model",
]


@dataclass(frozen=True)
class World:
    """Where this process stands: its global rank, its rank on this node and the number of processes."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints, events, status and previews."""
        return self.rank == 0


# -- process group ---------------------------------------------------------------------------------
def launched_by_torchrun() -> bool:
    """True inside a worker that torchrun started with more than one process in the job."""
    return "RANK" in os.environ and "LOCAL_RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def current_world() -> World:
    """The process group's view of this process (a single process when no group is initialised)."""
    if dist.is_available() and dist.is_initialized():
        return World(
            rank=dist.get_rank(), local_rank=int(os.environ.get("LOCAL_RANK", "0")), size=dist.get_world_size()
        )
    return World()


def setup(device: torch.device) -> World:
    """Join torchrun's process group: NCCL when training on CUDA, gloo on CPU.

    A no-op outside torchrun and when a group already exists (idempotent), so library callers
    may initialise their own group first. On CUDA each process binds to GPU ``LOCAL_RANK``.
    """
    if dist.is_available() and dist.is_initialized():
        return current_world()
    if not launched_by_torchrun():
        return World()
    if not dist.is_available():
        raise ConfigError("this PyTorch build has no torch.distributed; run seglab train without torchrun")
    local_rank = int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"torchrun started local rank {local_rank} but this node has "
                f"{torch.cuda.device_count()} CUDA device(s); "
                "use --nproc-per-node at most the number of GPUs"
            )
        gpu = torch.device("cuda", local_rank)
        torch.cuda.set_device(gpu)
        dist.init_process_group("nccl", device_id=gpu)  # device_id: bind the communicator to this GPU eagerly
    else:
        dist.init_process_group("gloo")
    return current_world()


def cleanup() -> None:
    """Destroy the process group if there is one (safe to call twice)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def process_group(device: torch.device) -> Iterator[World]:
    """``with process_group(device) as world:`` joins torchrun's group and always leaves it.

    The group is destroyed on exit (also on an error or a stop) only if this call created it.
    """
    created = launched_by_torchrun() and not (dist.is_available() and dist.is_initialized())
    world = setup(device)
    try:
        yield world
    finally:
        if created:
            cleanup()


def process_device(device: torch.device, world: World) -> torch.device:
    """The device of this process: under DDP on CUDA, GPU ``LOCAL_RANK`` whatever index was asked."""
    if device.type == "cuda" and world.distributed:
        return torch.device("cuda", world.local_rank)
    return device


def launcher_pid() -> int:
    """The pid that stands for the run: torchrun's agent (rank 0's parent) under torchrun, else this process.

    Stopping or killing the agent ends every worker; a dead agent means the run is dead.
    """
    return os.getppid() if launched_by_torchrun() else os.getpid()


# -- model -----------------------------------------------------------------------------------------
def wrap_model(
    model: torch.nn.Module, device: torch.device, world: World, *, sync_bn: bool = False
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """``(model, train_model)``: the plain model and what the training step calls.

    In a single process both are ``model``. Under DDP ``train_model`` is
    ``DistributedDataParallel(model)``, which averages gradients during ``backward``; everything
    else (evaluation, previews, checkpoints) uses the plain model, so saved state dicts have no
    ``module.`` prefix and load with any number of processes. ``sync_bn`` converts BatchNorm to
    SyncBatchNorm first (batch statistics over all processes; CUDA only).
    """
    if not world.distributed:
        return model, model
    if sync_bn:
        if device.type != "cuda":
            raise ConfigError(
                "sync_bn needs CUDA GPUs (SyncBatchNorm does not run on CPU); drop --sync-bn for CPU runs"
            )
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    # Every parameter of seglab's models takes part in the loss (the aux head too), so the faster
    # find_unused_parameters=False is safe. Buffers (BatchNorm running stats) follow rank 0 at each forward.
    parallel = torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=False
    )
    return model, parallel


def broadcast_buffers(model: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    Each rank updates its running statistics from its own batches after DDP's start-of-forward
    broadcast, so before an evaluation they differ slightly; this makes every rank evaluate
    exactly the weights rank 0 saves.
    """
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


# -- data ------------------------------------------------------------------------------------------
class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + W, rank + 2W, ...``: every sample on exactly one rank, none repeated.

    For evaluation. ``DistributedSampler`` pads with repeated samples so every rank gets as many,
    which would count those images twice in a summed confusion matrix. Ranks may get one sample
    fewer than others; that is fine because evaluation has no collective until the final sum.
    """

    def __init__(self, length: int, rank: int = 0, world_size: int = 1) -> None:
        if world_size < 1 or not 0 <= rank < world_size or length < 0:
            raise ConfigError(f"cannot shard {length} samples for rank {rank} of {world_size}")
        self.length, self.rank, self.world_size = length, rank, world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.length, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.world_size))


def train_sampler(dataset: Dataset, world: World, seed: int) -> DistributedSampler:
    """The training shard of this rank, reshuffled each epoch by ``sampler.set_epoch(epoch)``.

    Padding (repeating a few samples) keeps the number of steps equal on every rank, which DDP's
    gradient all-reduce needs.
    """
    return DistributedSampler(
        dataset, num_replicas=world.size, rank=world.rank, shuffle=True, seed=seed, drop_last=False
    )


# -- collectives -----------------------------------------------------------------------------------
def broadcast_from_main(values: Sequence[float], device: torch.device) -> list[float]:
    """Rank 0's ``values`` on every rank: a decision (stop now? how long have we trained?) taken once."""
    tensor = torch.tensor([float(value) for value in values], dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return tensor.tolist()


def mean_over_processes(values: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` over all ranks (a NaN or inf on any rank makes the result non-finite)."""
    values = values.detach().clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / dist.get_world_size()


def any_process(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` holds on any rank (a collective: every rank must call it)."""
    return float(mean_over_processes(torch.tensor([1.0 if flag else 0.0], device=device))) > 0


def loss_over_processes(
    loss: torch.Tensor, terms: dict[str, float], world: World, device: torch.device
) -> tuple[float, dict[str, float]]:
    """The loss and its terms: this process's, or under DDP their mean over all processes.

    The mean is what rank 0 logs, and since a NaN or inf on any rank makes it non-finite, every
    rank takes the same decision in the NaN guard (before ``backward``, where DDP synchronises).
    """
    if not world.distributed:
        return loss.item(), terms
    values = torch.tensor([loss.item(), *terms.values()], dtype=torch.float64, device=device)
    mean = mean_over_processes(values).tolist()
    return mean[0], dict(zip(terms, mean[1:]))


def broadcast_object(value: Any) -> Any:
    """Rank 0's ``value`` (any picklable object) on every rank; ``value`` itself in a single process."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


# -- launching -------------------------------------------------------------------------------------
def available_devices() -> int:
    """Number of CUDA GPUs this machine can train on (0 without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def max_processes() -> int:
    """The most training processes worth launching here: one per GPU, at least 1.

    CPU runs with several processes work (gloo) but are for tests and benchmarks, not speed.
    """
    return max(1, available_devices())


def launch_command(nproc: int) -> list[str]:
    """``python -m torch.distributed.run --standalone --nproc-per-node N -m seglab``: append the seglab arguments."""
    if nproc < 1:
        raise ConfigError(f"the number of processes must be >= 1, got {nproc}")
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", "-m", "seglab"]
