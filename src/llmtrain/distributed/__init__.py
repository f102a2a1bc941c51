"""Distributed training settings and (later) the transforms that wrap a built model."""

from llmtrain.distributed.config import DistributedConfig

__all__ = ["DistributedConfig"]
