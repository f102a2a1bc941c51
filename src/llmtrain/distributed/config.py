"""`DistributedConfig`: how a run spreads over processes. A launcher (`torchrun`) sets the
world size; `train.batch_size` stays the global batch whatever it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class DistributedConfig:
    strategy: Literal["ddp", "fsdp"] = "ddp"  # used when launched with more than one process
    backend: Literal["auto", "nccl", "gloo"] = "auto"  # auto: nccl on CUDA, gloo on CPU
    num_gpus: int | None = None  # informational (the seed script's --num_gpus); torchrun decides
