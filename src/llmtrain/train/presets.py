"""Run presets: `--preset NAME` seeds the model section from `llmtrain.models.presets` and adds
training defaults sized for that model (a plain dict of functions; no hidden registry)."""

from __future__ import annotations

from typing import Any

from llmtrain.models.presets import MODEL_PRESETS, default_objective, get_model_preset

# Training defaults by model scale. Tiny/mini models tolerate (and want) higher LRs; the
# GPT-2/LLaMA sizes use the published values (GPT-3 paper table 2.1 for 125M: 6e-4).
TINY = {"lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 20, "batch_size": 8}
MINI = {"lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 100, "batch_size": 16}
FULL = {"lr": 6e-4, "min_lr": 6e-5, "warmup_steps": 2000, "batch_size": 512}

# The train section of each preset (a preset without an entry gets FULL). Plain data: a new
# preset names its training defaults here; nothing parses the name.
TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    **dict.fromkeys(
        ("gpt2-tiny", "llama-tiny", "mixtral-tiny", "bert-tiny", "electra-tiny", "t5-tiny"),
        TINY,
    ),
    **dict.fromkeys(("gpt2-mini", "llama-mini"), MINI),
}


def get_run_preset(name: str) -> dict[str, Any]:
    """Partial RunConfig dict for preset `name` (raises ConfigError listing valid names)."""
    model = get_model_preset(name)
    train = {**TRAIN_DEFAULTS.get(name, FULL), "objective": default_objective(model)}
    return {"model": dict(model), "train": train}


def preset_names() -> list[str]:
    return sorted(MODEL_PRESETS)
