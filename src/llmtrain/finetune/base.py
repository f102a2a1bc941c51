"""The model a fine-tune starts from (`--from`): a llmtrain run or checkpoint directory, or a
local Hugging Face model directory of a family the project imports. `load_base` returns its
model section, tokenizer and a function that loads its weights into a built model."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from llmtrain.errors import ConfigError


@dataclass
class Base:
    path: str
    model: dict[str, Any]  # ModelConfig fields
    objective: str  # the base's training objective (kept valid for its architecture)
    tokenizer: Any
    load_weights: Callable[[nn.Module], None]


def _is_hf(p: Path) -> bool:
    if not (p / "config.json").is_file():
        return False
    try:
        return "model_type" in json.loads((p / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False


def load_base(path: str) -> Base:
    from llmtrain.tokenizer import load_tokenizer

    p = Path(path)
    if not path or not p.exists():
        raise ConfigError(
            f"--from {path!r}: not found; pass a llmtrain run directory or a local Hugging "
            "Face model directory (config.json + model.safetensors + tokenizer.json)"
        )
    if _is_hf(p):
        from llmtrain.models.hf_interop import hf_run_defaults, init_from_hf

        d = hf_run_defaults(p)
        model = {k: v for k, v in d["model"].items() if k != "init_from"}
        tok = load_tokenizer(p)
        return Base(str(p), model, d["train"]["objective"], tok, lambda m: init_from_hf(m, p))
    from llmtrain.checkpoint.io import find_checkpoint, load_model_weights, read_json

    ckpt = find_checkpoint(p)
    cfg = read_json(ckpt / "config.json")
    if cfg.get("finetune", {}).get("task"):
        raise ConfigError(
            f"--from {path}: this is already a fine-tuned run; fine-tune its base, or export "
            "it (`llmtrain export --merge-lora`) and pass the exported directory"
        )
    tok = None
    for cand in (ckpt / "tokenizer", ckpt.parent.parent / "tokenizer"):
        if cand.is_dir():
            tok = load_tokenizer(cand)
            break
    if tok is None:
        raise ConfigError(
            f"--from {path}: no tokenizer in the run directory ({ckpt.parent.parent})"
        )
    objective = cfg.get("train", {}).get("objective", "clm")
    return Base(str(p), cfg["model"], objective, tok, lambda m: load_model_weights(m, ckpt))
