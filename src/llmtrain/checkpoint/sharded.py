"""Sharded model + optimizer state through `torch.distributed.checkpoint` (DCP).

Used when `distributed.strategy = fsdp`: every rank writes its own shards into `dcp/`, and
loading reshards onto whatever world size reads them (2 ranks → 1 process → 2 ranks), also a
single process with no process group and an unsharded model, or DDP ranks (each reads the
whole tensors). Keys are the model's own parameter names (FQNs), the same as the unwrapped
model's state dict; optimizer state is keyed by those names too, so it does not depend on
parameter order or world size.

The other way, `load_full_into_sharded` reads a full checkpoint (DDP or one process:
model.safetensors + optimizer.pt, whose state is keyed by parameter index) into an FSDP2 model:
the indices are mapped to names through the optimizer's own parameter order (the same
`build_optimizer` groups on both sides) and every rank keeps its shard of each tensor.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from llmtrain.errors import CheckpointError

DCP_DIR = "dcp"
WRAPPER_PREFIXES = ("_checkpoint_wrapped_module.", "_orig_mod.")  # not in state-dict names


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
    return {name: t.contiguous() for name, t in first_of_tied(sd).items()}


def first_of_tied(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`sd` with tensors that share storage (tied weights) kept once, under their first name."""
    seen: set[int] = set()
    out = {}
    for name, t in sd.items():
        if t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            out[name] = t
    return out


def is_sharded(model: nn.Module) -> bool:
    """True when the model's parameters are FSDP2 DTensor shards."""
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in model.parameters())


def _state_dict_name(name: str) -> str:
    for prefix in WRAPPER_PREFIXES:
        name = name.replace(prefix, "")
    return name


def _with_tied_names(model: nn.Module, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors' save_model stores a tied tensor once; give it all of its names again."""
    aliases: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        aliases.setdefault(id(p), []).append(_state_dict_name(name))
    out = dict(weights)
    for names in aliases.values():
        present = [n for n in names if n in weights]
        for n in names:
            if present and n not in out:
                out[n] = weights[present[0]]
    return out


def _keyed_by_name(
    model: nn.Module, optimizer: torch.optim.Optimizer, saved: dict[str, Any]
) -> dict[str, Any]:
    """An index-keyed optimizer state_dict re-keyed by parameter names (DCP's format)."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    target = get_optimizer_state_dict(model, optimizer)["param_groups"]
    if "param_groups" not in saved or len(saved["param_groups"]) != len(target):
        raise CheckpointError(
            "the checkpoint's optimizer state does not match this run's optimizer (another "
            "optim.name?); resume with the optimizer it was written with"
        )
    names: dict[int, str] = {}
    groups = []
    for old, new in zip(saved["param_groups"], target):
        if len(old["params"]) != len(new["params"]):
            raise CheckpointError(
                f"the checkpoint's optimizer group has {len(old['params'])} parameters, this "
                f"run's {len(new['params'])}: was it written with another model config?"
            )
        names.update(zip(old["params"], new["params"]))
        groups.append({**old, "params": list(new["params"])})
    state = {names[int(i)]: v for i, v in saved["state"].items()}
    return {"state": state, "param_groups": groups}


def load_full_into_sharded(
    ckpt_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None
) -> None:
    """Collective: a full checkpoint (written under DDP or one process) into an FSDP2 model."""
    import safetensors.torch
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    full = StateDictOptions(full_state_dict=True)
    weights = safetensors.torch.load_file(str(ckpt_dir / "model.safetensors"))
    try:
        set_model_state_dict(model, _with_tied_names(model, weights), options=full)
        if optimizer is not None:
            saved = torch.load(ckpt_dir / "optimizer.pt", map_location="cpu", weights_only=True)
            named = _keyed_by_name(model, optimizer, saved)
            set_optimizer_state_dict(model, optimizer, named, options=full)
    except (RuntimeError, ValueError, KeyError) as e:
        raise CheckpointError(
            f"checkpoint {ckpt_dir} was written without sharding (distributed.strategy=ddp or "
            f"one process) and does not load into this FSDP2 model ({type(e).__name__}: {e}); "
            "resume with distributed.strategy=ddp and the model config it was written with"
        ) from None
