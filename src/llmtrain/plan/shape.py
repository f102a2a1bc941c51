"""One dial: a model's depth gives its whole shape, as nanochat's `--depth` does.

    n_embd   = depth · ASPECT         (nanochat: model_dim = depth × 64)
    n_head   = n_embd / HEAD_DIM      (64-dim heads, GPT-2's; at least 1)
    ffn      = the family's default   (4·d, or ~8/3·d rounded for gated MLPs)

The family's other fields (norm, positions, MLP kind, biases) come from its preset, which is
plain data in `models/presets.py`; vocabulary and context come from the data and the device.
"""

from __future__ import annotations

from typing import Any

from llmtrain.errors import ConfigError
from llmtrain.models.config import ModelConfig
from llmtrain.models.presets import MODEL_PRESETS

ASPECT = 64  # width per layer (nanochat)
HEAD_DIM = 64
FAMILIES = {"gpt2": "gpt2-mini", "llama": "llama-mini"}  # family -> preset holding its fields
MAX_DEPTH = 48


def model_fields(family: str, depth: int, vocab_size: int, block_size: int) -> dict[str, Any]:
    """The `model` section of a run config for `family` at `depth`."""
    if family not in FAMILIES:
        raise ConfigError(f"unknown model family {family!r} for plan; choose one of {', '.join(FAMILIES)}")  # fmt: skip
    if not 1 <= depth <= MAX_DEPTH:
        raise ConfigError(f"depth must be in 1..{MAX_DEPTH}, got {depth}")
    base = dict(MODEL_PRESETS[FAMILIES[family]])
    width = depth * ASPECT
    heads = max(1, width // HEAD_DIM)
    fields = {**base, "n_layer": depth, "n_embd": width, "n_head": heads}
    if "n_kv_head" in base:  # grouped-query attention keeps the preset's query/kv ratio
        ratio = max(1, base["n_head"] // base["n_kv_head"])
        fields["n_kv_head"] = heads // ratio if heads % ratio == 0 else heads
    fields.pop("intermediate_size", None)  # the family's default ratio at this width
    return {**fields, "vocab_size": vocab_size, "block_size": block_size}


def model_config(fields: dict[str, Any]) -> ModelConfig:
    known = set(ModelConfig.__dataclass_fields__)
    return ModelConfig(**{k: v for k, v in fields.items() if k in known})
