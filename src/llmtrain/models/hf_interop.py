"""Hugging Face interop without `transformers`, generic over the adapter table
(`llmtrain.models.hf`): our state dict <-> theirs (`to_hf`, `from_hf`), and import:
`config_from_hf` (config.json -> ModelConfig fields) and `init_from_hf(model, dir)`, which
`llmtrain train --init-from DIR` runs after building. Nothing here names a family.
Export (which needs `transformers` to verify itself) is `llmtrain.export.hf`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from llmtrain.errors import ExportError
from llmtrain.models.config import ModelConfig
from llmtrain.models.hf import (
    TARGETS,
    family_for_model_type,
    family_of,
    get_target,
    pick_target,
    rows_from_hf,
    rows_to_hf,
)

__all__ = [
    "TARGETS",
    "check_target",
    "config_from_hf",
    "from_hf",
    "hf_configs",
    "hf_run_defaults",
    "init_from_hf",
    "pick_target",
    "pos_offset_of",
    "read_hf_dir",
    "to_hf",
]


def part_config(cfg: ModelConfig, target: str) -> ModelConfig:
    """The config of the (sub-)model `target` writes: ELECTRA's generator has its own."""
    t = get_target(target)
    return t.part_config(cfg) if t.part_config else cfg


def check_target(cfg: ModelConfig, target: str) -> None:
    """ExportError, with the reasons, when `cfg` cannot be written as `target`."""
    get_target(target).check(cfg)


def hf_config(cfg: ModelConfig, target: str) -> dict[str, Any]:
    return get_target(target).config(part_config(cfg, target))


def to_hf(model: torch.nn.Module, target: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(HF config kwargs, HF state dict) of `model` as `target`; ExportError if impossible.
    Tied tensors appear once (HF re-ties them from the config)."""
    t = get_target(target)
    t.check(model.cfg)
    part = part_config(model.cfg, target)
    sd = rows_to_hf(model.state_dict(), t.rows(part), part, t.pos_offset)
    return t.config(part), sd


def from_hf(
    hf_sd: dict[str, torch.Tensor], cfg: ModelConfig, target: str, pos_offset: int = 0
) -> dict:
    """Our state dict from an HF one (the same rows run backwards); `pos_offset`: the
    position rows HF reserves below its first position (RoBERTa: pad_token_id + 1)."""
    hf_sd = family_of(target).normalise(hf_sd, cfg, target)
    return rows_from_hf(hf_sd, get_target(target).rows(part_config(cfg, target)), pos_offset)


def config_from_hf(
    hf: dict[str, Any], beside: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """(target, ModelConfig fields) from an HF config.json's dict (and the config.json of a
    model written beside it: ELECTRA's generator); ExportError for a model type or option
    this library does not represent."""
    return family_for_model_type(hf.get("model_type")).import_config(hf, beside)


def pos_offset_of(hf: dict[str, Any]) -> int:
    """Position rows an HF encoder reserves below its first position (RoBERTa: PAD + 1)."""
    try:
        family = family_for_model_type(hf.get("model_type"))
    except ExportError:
        return 0
    return family.pos_offset_of(hf)


def hf_run_defaults(path: str | Path) -> dict[str, Any]:
    """Partial run config for `train --init-from path`: the model section from its
    config.json (plus `init_from`) and the target's default objective."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ExportError(
            f"--init-from {path}: not a Hugging Face model directory (no config.json)"
        )
    target, fields = config_from_hf(*hf_configs(path))
    model = {**fields, "init_from": str(path)}
    return {"model": model, "train": {"objective": get_target(target).objective}}


def hf_configs(path: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(config.json, the config.json of the model written beside it, or None) of an HF
    directory (ELECTRA: `generator/`)."""
    main = json.loads((Path(path) / "config.json").read_text())
    try:
        family = family_for_model_type(main.get("model_type"))
    except ExportError:
        return main, None
    for t in family.targets:
        for sub, _ in t.beside:
            if (Path(path) / sub / "config.json").is_file():
                return main, json.loads((Path(path) / sub / "config.json").read_text())
    return main, None


def read_hf_dir(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(config.json dict, state dict) of a local HF directory in safetensors (one file or
    an index of shards). Pickled `.bin` weights are refused: loading them runs code."""
    import safetensors.torch

    path = Path(path)
    if not (path / "config.json").is_file():
        raise ExportError(f"{path} is not a Hugging Face model directory (no config.json)")
    hf_cfg = json.loads((path / "config.json").read_text())
    index = path / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (path / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        raise ExportError(
            f"{path} has no model.safetensors; convert pickled weights with transformers' "
            "`save_pretrained(..., safe_serialization=True)` first"
        )
    sd: dict[str, torch.Tensor] = {}
    for f in files:
        sd.update(safetensors.torch.load_file(str(path / f)))
    return hf_cfg, sd


@torch.no_grad()
def init_from_hf(model: torch.nn.Module, path: str | Path) -> str:
    """Copy the weights of the HF directory `path` into `model` (built from a config that
    matches it, e.g. `config_from_hf`); returns the target. Learned position tables longer
    than model.block_size are cut. Weights a family keeps beside the main directory (an
    ELECTRA generator in `generator/`) load when present, else stay as built."""
    path = Path(path)
    hf_cfg, hf_sd = read_hf_dir(path)
    target, _ = config_from_hf(*hf_configs(path))
    family = family_of(target)
    ours = from_hf(hf_sd, model.cfg, target, pos_offset_of(hf_cfg))
    if family.load_beside is not None:
        ours = family.load_beside(ours, path, model.cfg)
    own = model.state_dict()
    for key, t in ours.items():
        if key.endswith("wpe.weight") and t.size(0) > own[key].size(0):
            ours[key] = t[: own[key].size(0)]  # a shorter context than the checkpoint's
        if ours[key].shape != own[key].shape:
            raise ExportError(
                f"{path}: {key} has shape {tuple(ours[key].shape)} but the model's is "
                f"{tuple(own[key].shape)}; build the model from the HF config (--init-from "
                "does) and do not override its shape"
            )
    missing, unexpected = model.load_state_dict(ours, strict=False)
    missing = [k for k in missing if not k.startswith(family.optional_prefixes)]
    if missing or unexpected:
        raise ExportError(f"{path}: weights missing {missing[:5]}, unexpected {unexpected[:5]}")
    return target
