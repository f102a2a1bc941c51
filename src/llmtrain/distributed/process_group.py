"""The process group: `init_distributed()` reads what `torchrun` set (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR/PORT) and returns a `DistInfo`; without those variables it returns a
single-process `DistInfo` and starts nothing. Small collectives used by the loop live here too
(`all_sum`, `any_rank`), each a no-op in a single process.

`torchrun --max-restarts N` reuses its TCP store across restarts; gloo workers of a restarted
attempt then read the dead attempt's addresses and hang or fail. The process group is therefore
built on a `PrefixStore` keyed by TORCHELASTIC_RESTART_COUNT, a fresh namespace per attempt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from llmtrain.distributed.config import DistributedConfig
from llmtrain.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_rank0(self) -> bool:
        return self.rank == 0


def current() -> DistInfo:
    """The DistInfo of an already initialised process group (single process if none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def resolve_backend(cfg: DistributedConfig, device_type: str) -> str:
    if cfg.backend != "auto":
        if cfg.backend == "nccl" and device_type != "cuda":
            raise ConfigError("distributed.backend='nccl' needs CUDA; use 'gloo' or 'auto'")
        return cfg.backend
    return "nccl" if device_type == "cuda" else "gloo"


def init_distributed(cfg: DistributedConfig, device_type: str) -> DistInfo:
    """Join the process group torchrun describes (or reuse one already initialised).

    On CUDA each process binds to GPU LOCAL_RANK before any tensor is created."""
    if dist.is_available() and dist.is_initialized():
        return current()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        world,
        is_master=False if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True" else rank == 0,
        timeout=timedelta(seconds=cfg.timeout_sec),
    )
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    dist.init_process_group(
        resolve_backend(cfg, device_type),
        store=dist.PrefixStore(f"llmtrain/attempt{attempt}/", store),
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=cfg.timeout_sec),
    )
    return DistInfo(rank, world, local_rank)


def destroy_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(value: float | torch.Tensor, device: torch.device | None = None) -> Any:
    """Sum of `value` over ranks (itself in a single process). A tensor is reduced in its
    own dtype (so a float32 loss sums exactly as one process would); a number in float64."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    if isinstance(value, torch.Tensor):
        t = value.detach().clone()
    else:
        t = torch.tensor(float(value), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t if isinstance(value, torch.Tensor) else t.item()


def any_rank(flag: bool, device: torch.device | None = None) -> bool:
    """True on every rank when `flag` is true on at least one (a stop request, say)."""
    return all_sum(1.0 if flag else 0.0, device) > 0


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
