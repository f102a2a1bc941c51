"""Distributed training as transforms over a built model (the model files never import
torch.distributed): `init_distributed` joins the process group torchrun describes,
`parallelize` applies activation checkpointing → compile → DDP | FSDP2 in that order, and a
few collectives (`all_sum`, `any_rank`) the loop uses, all no-ops in a single process."""

from llmtrain.distributed.config import DistributedConfig
from llmtrain.distributed.parallelize import grad_sync, parallelize
from llmtrain.distributed.process_group import (
    DistInfo,
    all_sum,
    any_rank,
    barrier,
    destroy_distributed,
    init_distributed,
)

__all__ = [
    "DistInfo",
    "DistributedConfig",
    "all_sum",
    "any_rank",
    "barrier",
    "destroy_distributed",
    "grad_sync",
    "init_distributed",
    "parallelize",
]
