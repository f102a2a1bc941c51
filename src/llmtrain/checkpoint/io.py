"""Checkpoint layout (one directory per step, complete or absent):

    RUN_DIR/checkpoints/step_000100/
        model.safetensors   weights of the unwrapped model (ties kept via save_model)
        optimizer.pt        optimizer state_dict: tensors and plain numbers only
        rng.pt              torch CPU (and CUDA) RNG states as uint8 tensors
        state.json          step, tokens, loader position, elapsed time, config digest
        config.json         the resolved run config

It is written into `.tmp-step_000100` and renamed, so a crash never leaves a directory that
looks complete. Loading never unpickles arbitrary objects.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from torch import nn

from llmtrain.errors import CheckpointError

PREFIX = "step_"
FILES = ("model.safetensors", "optimizer.pt", "rng.pt", "state.json", "config.json")


def _step_dir(ckpt_root: Path, step: int) -> Path:
    return ckpt_root / f"{PREFIX}{step:06d}"


def list_checkpoints(ckpt_root: str | Path) -> list[Path]:
    """Complete checkpoint directories, oldest first."""
    root = Path(ckpt_root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX)]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def latest_checkpoint(ckpt_root: str | Path) -> Path | None:
    found = list_checkpoints(ckpt_root)
    return found[-1] if found else None


def find_checkpoint(path: str | Path) -> Path:
    """Resolve a run directory, a checkpoints directory or a checkpoint to a checkpoint dir."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint or run directory not found: {p}")
    if (p / "model.safetensors").is_file():
        return p
    for root in (p / "checkpoints", p):
        latest = latest_checkpoint(root)
        if latest is not None:
            return latest
    raise CheckpointError(
        f"no checkpoint in {p}: expected a run directory with checkpoints/step_*/ or a "
        "checkpoint directory holding model.safetensors (train longer than "
        "train.checkpoint_every, or pass the right path)"
    )


def save_checkpoint(
    ckpt_root: str | Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    state: dict[str, Any],
    config: dict[str, Any],
    keep_last: int = 0,
) -> Path:
    """Write checkpoint `step` atomically and prune old ones; returns its directory."""
    root = Path(ckpt_root)
    root.mkdir(parents=True, exist_ok=True)
    final = _step_dir(root, step)
    tmp = root / f".tmp-{final.name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    safetensors.torch.save_model(model, str(tmp / "model.safetensors"))
    if optimizer is not None:
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state()
    torch.save(rng, tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=2))
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    if keep_last > 0:
        for old in list_checkpoints(root)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_model_weights(model: nn.Module, ckpt_dir: str | Path) -> None:
    """Load weights into `model` (strict), turning any corruption into CheckpointError."""
    path = Path(ckpt_dir) / "model.safetensors"
    if not path.is_file():
        raise CheckpointError(f"checkpoint weights missing: {path}")
    try:
        missing, unexpected = safetensors.torch.load_model(model, str(path), strict=False)
    except (safetensors.SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise CheckpointError(
            f"checkpoint weights {path} are corrupt or do not match the model ({e}); "
            "use an earlier checkpoint or retrain"
        ) from None
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {path} does not match the model: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]} (was it written with another model config?)"
        )


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"checkpoint file {path} is missing or corrupt: {e}") from None


def load_checkpoint(
    ckpt_dir: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
) -> dict[str, Any]:
    """Restore model, optimizer and RNG state; return the loop state (state.json)."""
    d = Path(ckpt_dir)
    state = read_json(d / "state.json")
    load_model_weights(model, d)
    try:
        if optimizer is not None:
            opt_state = torch.load(d / "optimizer.pt", map_location="cpu", weights_only=True)
            optimizer.load_state_dict(opt_state)
        rng = torch.load(d / "rng.pt", map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, KeyError, EOFError) as e:
        raise CheckpointError(f"checkpoint {d} is corrupt ({type(e).__name__}: {e})") from None
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])
    return state
