"""Checkpoints: atomic save (temp dir + rename), retention of the last K, exact-resume state,
and safe loading (safetensors for weights, `weights_only=True` for the optimizer)."""

from llmtrain.checkpoint.io import (
    find_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_model_weights,
    save_checkpoint,
)

__all__ = [
    "find_checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_model_weights",
    "save_checkpoint",
]
