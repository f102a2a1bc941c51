"""Export of fine-tuned runs: `merged_run` folds LoRA adapters into the base weights and
writes a plain llmtrain run (`llmtrain export RUN --merge-lora --out DIR`: a base for
`--from`, `generate`, `eval` without peft); `add_chat_template` gives an exported Hugging
Face tokenizer the chat tokens (at our ids) and the chat template of an SFT run. The HF
export of a LoRA run always merges first (`merge_for_export`)."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

from torch import nn

from llmtrain.checkpoint.io import read_json, save_checkpoint
from llmtrain.errors import ExportError
from llmtrain.models.lora import has_lora, merge_lora

RUN_FILES = ("tokenizer", "labels.json", "chat.json")


def merge_for_export(model: nn.Module) -> nn.Module:
    """A copy of `model` with every LoRA adapter merged (the model itself when it has none)."""
    return merge_lora(copy.deepcopy(model)) if has_lora(model) else model


def merged_run(loaded: Any, out: str | Path) -> Path:
    """Write `loaded` (a `checkpoint.inference.LoadedModel`) with merged adapters as a run
    directory `out` (one checkpoint, finetune.lora.rank 0); returns the checkpoint."""
    out = Path(out)
    if (out / "checkpoints").exists():
        raise ExportError(f"{out} already holds checkpoints; choose a new --out")
    model = merge_for_export(loaded.model)
    config = read_json(loaded.checkpoint / "config.json")
    config.setdefault("finetune", {}).setdefault("lora", {})["rank"] = 0
    state = {"step": loaded.step, "merged_from": str(loaded.checkpoint)}
    ckpt = save_checkpoint(out / "checkpoints", loaded.step, model, None, state, config)
    run = loaded.checkpoint.parent.parent
    for name in RUN_FILES:
        src = run / name
        if src.is_dir():
            shutil.copytree(src, out / name)
        elif src.is_file():
            shutil.copy2(src, out / name)
    return ckpt


def add_chat_template(out: str | Path, fmt: Any, template: str) -> None:
    """Add <|im_start|>/<|im_end|> (ids `fmt.im_start`, `fmt.im_end`) and `template` to the
    HF tokenizer saved in `out`; ExportError when the ids would not match ours."""
    from llmtrain.export.hf_tokenizer import require_transformers
    from llmtrain.finetune.chat import IM_END, IM_START

    tf = require_transformers()
    tok = tf.AutoTokenizer.from_pretrained(out)
    tok.add_special_tokens({"additional_special_tokens": [IM_START, IM_END]})
    got = tok.convert_tokens_to_ids([IM_START, IM_END])
    if got != [fmt.im_start, fmt.im_end]:
        raise ExportError(
            f"the exported tokenizer put the chat tokens at {got}, ours are "
            f"{[fmt.im_start, fmt.im_end]}; pass --no-tokenizer"
        )
    tok.chat_template = template
    tok.save_pretrained(out)
