"""The process group: `init_distributed()` reads what the launcher set and returns a
`DistInfo`; without those variables it returns a single-process `DistInfo` and starts nothing.
Launchers: `torchrun` and `accelerate launch --multi_gpu` (which runs torchrun's code, also on
a CPU: gloo) set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT; MPI launchers (accelerate's
multi-CPU `--mpirun_hostfile`) set PMI_* / OMPI_COMM_WORLD_* / MV2_COMM_WORLD_* instead, read
here in accelerate's own order. `accelerate launch --cpu --num_processes N` starts ONE process
and sets no world size: that is detected and warned about (`single_process_launch_warning`).
Small collectives used by the loop live here too (`all_sum`, `any_rank`), each a no-op in a
single process.

`torchrun --max-restarts N` reuses its TCP store across restarts; gloo workers of a restarted
attempt then read the dead attempt's addresses and hang or fail. The process group is therefore
built on a `PrefixStore` keyed by TORCHELASTIC_RESTART_COUNT, a fresh namespace per attempt.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
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
    tp: int = 1  # ranks per tensor-parallel group; they read the same data

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def dp_rank(self) -> int:
        """The data shard this rank reads: ranks of one tensor-parallel group share it (the
        (dp, tp) mesh is row-major, as `init_device_mesh` lays it out)."""
        return self.rank // self.tp

    @property
    def dp_size(self) -> int:
        return self.world_size // self.tp

    @property
    def is_rank0(self) -> bool:
        return self.rank == 0


def current() -> DistInfo:
    """The DistInfo of an already initialised process group (single process if none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(dist.get_rank(), dist.get_world_size(), launch_env().local_rank)


# the first variable set wins (accelerate.utils.environment's order)
RANK_VARS = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")
WORLD_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
LOCAL_RANK_VARS = (
    "LOCAL_RANK",
    "MPI_LOCALRANKID",
    "OMPI_COMM_WORLD_LOCAL_RANK",
    "MV2_COMM_WORLD_LOCAL_RANK",
)


def _first_int(env: Mapping[str, str], names: tuple[str, ...], default: int) -> int:
    for name in names:
        if env.get(name, "").strip():
            return int(env[name])
    return default


def launch_env(env: Mapping[str, str] = os.environ) -> DistInfo:
    """Rank, world size and local rank as the launcher (torchrun, accelerate, MPI) set them."""
    return DistInfo(
        _first_int(env, RANK_VARS, 0),
        _first_int(env, WORLD_VARS, 1),
        _first_int(env, LOCAL_RANK_VARS, 0),
    )


def single_process_launch_warning(env: Mapping[str, str] = os.environ) -> str | None:
    """The message when `accelerate launch --cpu --num_processes N` (N > 1) started this
    single process: accelerate then sets ACCELERATE_USE_CPU and MASTER_ADDR but no world size."""
    by_accelerate = "ACCELERATE_USE_CPU" in env and "MASTER_ADDR" in env
    if not by_accelerate or any(env.get(v) for v in WORLD_VARS):
        return None
    return (
        "accelerate launch --cpu --num_processes N starts ONE process (its multi-CPU mode needs "
        "MPI: --mpirun_hostfile); this run trains in 1 process. For N processes on CPU use "
        "`accelerate launch --multi_gpu --num_processes N` (gloo on a CPU) or "
        "`torchrun --nproc_per_node N`; train.batch_size stays the global batch either way"
    )


def resolve_backend(cfg: DistributedConfig, device_type: str) -> str:
    if cfg.backend != "auto":
        if cfg.backend == "nccl" and device_type != "cuda":
            raise ConfigError("distributed.backend='nccl' needs CUDA; use 'gloo' or 'auto'")
        return cfg.backend
    return "nccl" if device_type == "cuda" else "gloo"


def init_distributed(cfg: DistributedConfig, device_type: str) -> DistInfo:
    """Join the process group the launcher describes (or reuse one already initialised).

    On CUDA each process binds to GPU LOCAL_RANK before any tensor is created."""
    if dist.is_available() and dist.is_initialized():
        return current()
    launched = launch_env()
    check_tensor_parallel(cfg, launched.world_size)
    if launched.world_size <= 1:
        if (msg := single_process_launch_warning()) is not None:
            print(f"warning: {msg}", file=sys.stderr)
        return DistInfo()
    rank, world, local_rank = launched.rank, launched.world_size, launched.local_rank
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    store = dist.TCPStore(
        os.environ.get("MASTER_ADDR", "127.0.0.1"),
        int(os.environ.get("MASTER_PORT", "29500")),
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
    return DistInfo(rank, world, local_rank, cfg.tensor_parallel)


def check_tensor_parallel(cfg: DistributedConfig, world_size: int) -> None:
    tp = cfg.tensor_parallel
    if tp > 1 and world_size % tp != 0:
        raise ConfigError(
            f"distributed.tensor_parallel={tp} does not divide the world size {world_size}; "
            f"launch a multiple of {tp} processes (torchrun --nproc_per_node) or change it"
        )


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
