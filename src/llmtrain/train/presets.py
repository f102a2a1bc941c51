"""Run presets: `--preset NAME` seeds the model section from `llmtrain.models.presets` and adds
training defaults sized for that model (a plain dict of functions; no hidden registry)."""

from __future__ import annotations

from typing import Any

from llmtrain.models.presets import MODEL_PRESETS, default_objective, get_model_preset

# Training defaults by model scale. Tiny/mini models tolerate (and want) higher LRs; the
# GPT-2/LLaMA sizes use the published values (GPT-3 paper table 2.1 for 125M: 6e-4).
_TRAIN_BY_SCALE: dict[str, dict[str, Any]] = {
    "tiny": {"lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 20, "batch_size": 8},
    "mini": {"lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 100, "batch_size": 16},
    "full": {"lr": 6e-4, "min_lr": 6e-5, "warmup_steps": 2000, "batch_size": 512},
}


def _scale(name: str) -> str:
    if name.endswith("-tiny"):
        return "tiny"
    if name.endswith("-mini"):
        return "mini"
    return "full"


def get_run_preset(name: str) -> dict[str, Any]:
    """Partial RunConfig dict for preset `name` (raises ConfigError listing valid names)."""
    model = get_model_preset(name)
    train = {**_TRAIN_BY_SCALE[_scale(name)], "objective": default_objective(name)}
    return {"model": dict(model), "train": train}


def preset_names() -> list[str]:
    return sorted(MODEL_PRESETS)
