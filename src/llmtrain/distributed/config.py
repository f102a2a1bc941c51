"""`DistributedConfig`: how a run spreads over processes. A launcher (`torchrun`, `deepspeed`,
`accelerate launch`, `srun torchrun` on SLURM) sets the world size; `train.batch_size` stays
the global batch whatever it is. `tensor_parallel = N` splits each block over N ranks (a 2-D
mesh: world = data-parallel × N); `strategy = deepspeed` hands backward/step to DeepSpeed ZeRO."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from llmtrain.config.core import ConfigSection
from llmtrain.errors import ConfigError


@dataclass
class DistributedConfig(ConfigSection):
    _prefix = "distributed"

    # ddp: replicate the model; fsdp: FSDP2 shards parameters, grads and optimizer state, and
    # checkpoints are sharded (torch.distributed.checkpoint), loadable on any world size;
    # deepspeed: the DeepSpeed engine (ZeRO 1/2/3 from `deepspeed_config`) owns backward/step
    strategy: Literal["ddp", "fsdp", "deepspeed"] = "ddp"
    backend: Literal["auto", "nccl", "gloo"] = "auto"  # auto: nccl on CUDA, gloo on CPU
    num_gpus: int | None = None  # informational (the seed script's --num_gpus); torchrun decides
    activation_checkpointing: bool = False  # recompute each block's activations in backward
    reshard_after_forward: bool = True  # fsdp: free gathered params after forward (ZeRO-3)
    timeout_sec: int = 600  # collective / store timeout
    # ranks per tensor-parallel group (DTensor: column/row-parallel linears, sequence-parallel
    # norms); 1 = off. Must divide the world size and the model's heads.
    tensor_parallel: int = 1
    # deepspeed: a DeepSpeed JSON config (configs/deepspeed_zero*.json); batch sizes, clipping
    # and accumulation set to "auto" (or left out) are filled from train.*
    deepspeed_config: str | None = None
    zero_stage: int | None = None  # overrides zero_optimization.stage of that file

    def head_outside_module_calls(self) -> str | None:
        """What in this layout keeps the LM head's weight from being used as a plain tensor
        outside a module call (the fused head + loss does), or None: a head split by tensor
        parallel, or ZeRO-3's partitioned weights (DeepSpeed gathers them for `F.linear` only)."""
        if self.tensor_parallel > 1:
            return f"distributed.tensor_parallel={self.tensor_parallel}"
        if self.strategy == "deepspeed":
            from llmtrain.distributed.deepspeed_engine import read_ds_config

            if int(read_ds_config(self).get("zero_optimization", {}).get("stage", 0)) == 3:
                return "DeepSpeed ZeRO stage 3"
        return None

    def validate(self) -> None:
        if self.timeout_sec <= 0:
            raise ConfigError(f"distributed.timeout_sec must be positive, got {self.timeout_sec}")
        if self.tensor_parallel < 1:
            raise ConfigError(
                f"distributed.tensor_parallel must be >= 1 (1 = off), got {self.tensor_parallel}"
            )
        if self.zero_stage is not None and self.zero_stage not in (0, 1, 2, 3):
            raise ConfigError(f"distributed.zero_stage must be 0, 1, 2 or 3, got {self.zero_stage}")
        if self.strategy != "deepspeed" and (self.deepspeed_config or self.zero_stage is not None):
            raise ConfigError(
                "distributed.deepspeed_config / zero_stage are set but distributed.strategy is "
                f"{self.strategy!r}; set distributed.strategy=deepspeed"
            )
        if self.strategy == "deepspeed" and self.tensor_parallel > 1:
            raise ConfigError(
                "distributed.strategy=deepspeed does not compose with PyTorch tensor parallel "
                f"(distributed.tensor_parallel={self.tensor_parallel}); use strategy=fsdp with "
                "tensor_parallel, or deepspeed with tensor_parallel=1"
            )
