"""`DistributedConfig`: how a run spreads over processes. A launcher (`torchrun`) sets the
world size; `train.batch_size` stays the global batch whatever it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from llmtrain.config.core import ConfigSection
from llmtrain.errors import ConfigError


@dataclass
class DistributedConfig(ConfigSection):
    _prefix = "distributed"

    # ddp: replicate the model; fsdp: FSDP2 shards parameters, grads and optimizer state, and
    # checkpoints are sharded (torch.distributed.checkpoint), loadable on any world size
    strategy: Literal["ddp", "fsdp"] = "ddp"
    backend: Literal["auto", "nccl", "gloo"] = "auto"  # auto: nccl on CUDA, gloo on CPU
    num_gpus: int | None = None  # informational (the seed script's --num_gpus); torchrun decides
    activation_checkpointing: bool = False  # recompute each block's activations in backward
    reshard_after_forward: bool = True  # fsdp: free gathered params after forward (ZeRO-3)
    timeout_sec: int = 600  # collective / store timeout

    def validate(self) -> None:
        if self.timeout_sec <= 0:
            raise ConfigError(f"distributed.timeout_sec must be positive, got {self.timeout_sec}")
