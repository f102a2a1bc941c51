"""Sharded model + optimizer state through `torch.distributed.checkpoint` (DCP).

Used when `distributed.strategy = fsdp`: every rank writes its own shards into `dcp/`, and
loading reshards onto whatever world size reads them (2 ranks → 1 process → 2 ranks), also a
single process with no process group and an unsharded model. Keys are the model's own
parameter names (FQNs), the same as the unwrapped model's state dict; optimizer state is keyed
by those names too, so it does not depend on parameter order or world size.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

DCP_DIR = "dcp"


def _state(model: nn.Module, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    state: dict[str, Any] = {"model": get_model_state_dict(model)}
    if optimizer is not None:
        state["optim"] = get_optimizer_state_dict(model, optimizer)
    return state


@contextlib.contextmanager
def _quiet_single_process() -> Iterator[None]:
    """DCP warns when no process group exists; one process reading/writing is intended."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


def save_sharded(ckpt_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
    """Collective: every rank calls it with the same directory."""
    import torch.distributed.checkpoint as dcp

    with _quiet_single_process():
        dcp.save(_state(model, optimizer), checkpoint_id=str(ckpt_dir / DCP_DIR))


def load_sharded(ckpt_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
    """Collective: read `ckpt_dir/dcp` into the model (and optimizer) as sharded now."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    state = _state(model, optimizer)
    with _quiet_single_process():
        dcp.load(state, checkpoint_id=str(ckpt_dir / DCP_DIR))
    set_model_state_dict(model, state["model"])
    if optimizer is not None:
        set_optimizer_state_dict(model, optimizer, state["optim"])


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Collective: the whole unsharded state dict on CPU, on rank 0 (empty on the others);
    tied tensors appear once, under their first name."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    sd = get_model_state_dict(
        model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
    )
    seen: set[int] = set()
    out = {}
    for name, t in sd.items():
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        out[name] = t.contiguous()
    return out
