"""DeepSpeed checkpoints in llmtrain's layout. `weight_writer` writes the engine's own
checkpoint (`engine.save_checkpoint`, ZeRO partitions and all) into `step_N/deepspeed/`, then
converts it with DeepSpeed's `zero_to_fp32` into `step_N/model.safetensors`, beside the usual
rng.pt / state.json / config.json / checksums (one atomic step directory, as always), so
eval, generate and export read it like any other. `weight_reader` resumes it exactly through
`engine.load_checkpoint`. Both are checkpoint.io hooks (the engine's `CheckpointParts`). `convert_deepspeed_checkpoint` does the conversion for a checkpoint
directory that `engine.save_checkpoint` wrote outside llmtrain.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
import torch.distributed as dist

from llmtrain.checkpoint.io import DEEPSPEED_DIR
from llmtrain.checkpoint.sharded import first_of_tied
from llmtrain.errors import CheckpointError


def _rank0() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def fp32_weights(ds_root: Path, tag: str) -> dict[str, torch.Tensor]:
    """The full fp32 model state of a ZeRO 1/2/3 checkpoint (DeepSpeed's zero_to_fp32);
    tied tensors appear once."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    sd = get_fp32_state_dict_from_zero_checkpoint(str(ds_root), tag=tag)
    return {name: t.detach().contiguous().float() for name, t in first_of_tied(sd).items()}


def weight_writer(engine: Any) -> Callable[[Path], None]:
    """The `write_weights` hook of a DeepSpeed engine's checkpoint (collective; see the
    module docstring): its own checkpoint, then model.safetensors converted from it."""

    def write(tmp: Path) -> None:
        engine.save_checkpoint(str(tmp), tag=DEEPSPEED_DIR, save_latest=False)
        if dist.is_available() and dist.is_initialized():
            dist.barrier()  # every rank's ZeRO partition is on disk before the conversion
        if _rank0():
            weights = fp32_weights(tmp, DEEPSPEED_DIR)
            safetensors.torch.save_file(weights, str(tmp / "model.safetensors"))

    return write


def weight_reader(engine: Any) -> Callable[[Path], None]:
    """The `load_weights` hook that resumes a DeepSpeed engine (weights, ZeRO optimizer state)."""

    def read(ckpt: Path) -> None:
        if not (ckpt / DEEPSPEED_DIR).is_dir():
            raise CheckpointError(
                f"checkpoint {ckpt} was not written by DeepSpeed (no {DEEPSPEED_DIR}/); resume "
                "it with the distributed.strategy it was written with (ddp or fsdp)"
            )
        path, _ = engine.load_checkpoint(
            str(ckpt), tag=DEEPSPEED_DIR, load_lr_scheduler_states=False
        )
        if path is None:
            raise CheckpointError(f"DeepSpeed could not load {ckpt / DEEPSPEED_DIR}")

    return read


def convert_deepspeed_checkpoint(
    ds_root: str | Path, out: str | Path, tag: str | None = None
) -> Path:
    """Write `out/model.safetensors` from a checkpoint saved by `engine.save_checkpoint`
    (`ds_root` holds the tag directories; `tag` defaults to its `latest` file)."""
    root = Path(ds_root)
    if not root.is_dir():
        raise CheckpointError(f"DeepSpeed checkpoint directory not found: {root}")
    weights = fp32_weights(root, tag) if tag else fp32_weights(root, None)  # type: ignore[arg-type]
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_file(weights, str(dest / "model.safetensors"))
    return dest / "model.safetensors"
