"""Load a trained model for eval/generate/export from a run directory or a checkpoint:
the checkpoint's own config rebuilds the model, and the tokenizer comes from the run
directory (copied there at train start) or, failing that, from the data directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from llmtrain.checkpoint.io import (
    best_checkpoint,
    find_checkpoint,
    load_model_weights,
    read_json,
    read_state,
    verify_checksums,
)
from llmtrain.config import config_from_dict
from llmtrain.errors import CheckpointError, LLMTrainError
from llmtrain.models import build_model
from llmtrain.tokenizer import Tokenizer, load_tokenizer
from llmtrain.train.config import RunConfig
from llmtrain.train.precision import flush_cpu_subnormals


@dataclass
class LoadedModel:
    model: nn.Module
    config: RunConfig
    tokenizer: Tokenizer | None
    checkpoint: Path
    step: int


def load_trained(
    path: str | Path,
    device: torch.device | str = "cpu",
    *,
    verify: bool = True,
    best: bool = False,
) -> LoadedModel:
    """The model of a run or checkpoint, its checksums verified first (`verify=False`, the
    CLI's `--no-verify`, loads a damaged or hand-edited checkpoint anyway). `best`: a run's
    best checkpoint by its val score (as a fine-tune's chosen metric picks it)."""
    ckpt = find_checkpoint(path)
    if best and (Path(path) / "checkpoints").is_dir():
        ckpt = best_checkpoint(Path(path) / "checkpoints") or ckpt
    if verify:
        verify_checksums(ckpt, option="pass its directory, RUN/checkpoints/step_N")
    raw = read_json(ckpt / "config.json")
    if not isinstance(raw, dict):
        raise CheckpointError(f"checkpoint {ckpt} has an unreadable config.json")
    try:
        cfg = config_from_dict(RunConfig, raw)
    except LLMTrainError as e:
        raise CheckpointError(f"checkpoint {ckpt} has an unreadable config.json: {e}") from None
    flush_cpu_subnormals(torch.device(device))  # as in training (a trained attention makes them)
    model = build_model(cfg.model, device=torch.device(device))
    ft = cfg.finetune
    if ft.task:  # a fine-tuned run: its head and LoRA adapters around the base
        from llmtrain.models.heads import task_model

        model = task_model(model, ft.head if ft.task == "classify" else None, ft.lora)
    load_model_weights(model, ckpt)
    model.eval()
    state = read_state(ckpt, keys=("step",))
    return LoadedModel(model, cfg, _find_tokenizer(ckpt, cfg), ckpt, state["step"])


def _find_tokenizer(ckpt: Path, cfg: RunConfig) -> Tokenizer | None:
    candidates = [ckpt / "tokenizer", ckpt.parent.parent / "tokenizer"]
    if cfg.data.path:
        candidates.append(Path(cfg.data.path) / "tokenizer")
    for c in candidates:
        if c.is_dir():
            return load_tokenizer(c)
    return None
