"""Checkpoints: atomic save (temp dir + rename), retention of the last K, exact-resume state,
and safe loading (safetensors for weights, `weights_only=True` for the optimizer),
checksums, sharded DCP checkpoints under FSDP, and a run-directory lock."""

from llmtrain.checkpoint.io import (
    LOOP_KEYS,
    best_checkpoint,
    checkpoint_ok,
    find_checkpoint,
    last_verified_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_model_weights,
    read_state,
    save_checkpoint,
    select_checkpoint,
    verify_checksums,
)
from llmtrain.checkpoint.lock import RunDirLock, check_run_dir

__all__ = [
    "LOOP_KEYS",
    "RunDirLock",
    "best_checkpoint",
    "check_run_dir",
    "checkpoint_ok",
    "find_checkpoint",
    "last_verified_checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_model_weights",
    "read_state",
    "save_checkpoint",
    "select_checkpoint",
    "verify_checksums",
]
