"""The training engine: the few points where the loop hands over to whoever owns the
gradients — backward, clip + grad norm, optimizer step, zero_grad, checkpoint save/load.

`TorchEngine` (one process, DDP, FSDP2, tensor parallel) is plain autograd and the torch
optimizer; `DeepSpeedEngine` (distributed/deepspeed_engine.py) hands all of it to DeepSpeed.
`build_engine` picks one from `distributed.strategy`; nothing else branches on the name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from llmtrain.checkpoint import load_checkpoint, save_checkpoint
from llmtrain.distributed.config import DistributedConfig
from llmtrain.distributed.parallelize import full_norm
from llmtrain.distributed.process_group import DistInfo


class Engine(Protocol):
    forward: nn.Module  # what the loop calls for the forward pass
    steps_torch_optimizer: bool  # the loop may step the torch optimizer itself (sync-free)

    def backward(self, loss: torch.Tensor) -> None: ...
    def clip_grad_norm(self, max_norm: float) -> torch.Tensor: ...
    def step(self) -> None: ...
    def zero_grad(self) -> None: ...
    def reported_grad_norm(self, before_step: float) -> float: ...
    def save(
        self,
        root: Path,
        step: int,
        state: dict,
        config: dict,
        keep_last: int,
        protect: Path | None = None,  # never pruned (the last verified one)
    ) -> Path: ...
    def load(
        self, ckpt_dir: Path, verify: bool = True, require: tuple[str, ...] = ("step",)
    ) -> dict[str, Any]: ...


class TorchEngine:
    """Autograd + the torch optimizer; checkpoints full (DDP, one process) or sharded DCP
    (FSDP2, tensor parallel: loadable on any world size and TP degree)."""

    steps_torch_optimizer = True

    def __init__(
        self, model: nn.Module, forward: nn.Module, optimizer: torch.optim.Optimizer, sharded: bool
    ) -> None:
        self.model, self.forward, self.optimizer, self.sharded = model, forward, optimizer, sharded

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def clip_grad_norm(self, max_norm: float) -> torch.Tensor:
        """Clip in place; the total norm before clipping (a plain tensor, also under DTensor)."""
        return full_norm(torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))

    def step(self) -> None:
        self.optimizer.step()

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def reported_grad_norm(self, before_step: float) -> float:
        return before_step

    def save(
        self,
        root: Path,
        step: int,
        state: dict,
        config: dict,
        keep_last: int,
        protect: Path | None = None,
    ) -> Path:
        return save_checkpoint(
            root,
            step,
            self.model,
            self.optimizer,
            state,
            config,
            keep_last,
            sharded=self.sharded,
            protect=protect,
        )

    def load(
        self, ckpt_dir: Path, verify: bool = True, require: tuple[str, ...] = ("step",)
    ) -> dict[str, Any]:
        return load_checkpoint(ckpt_dir, self.model, self.optimizer, verify=verify, require=require)


def build_engine(
    run: Any, info: DistInfo, model: nn.Module, forward: nn.Module, optimizer: torch.optim.Optimizer
) -> Engine:
    """The engine of `run.distributed.strategy` around a parallelized model and its optimizer
    (`run` is the RunConfig: DeepSpeed checks its options against train.* and optim.*)."""
    cfg: DistributedConfig = run.distributed
    if cfg.strategy == "deepspeed":
        from llmtrain.distributed.deepspeed_engine import DeepSpeedEngine

        return DeepSpeedEngine(run, info, model, optimizer)
    sharded = cfg.strategy == "fsdp" or info.tp > 1  # DCP: any world size, any TP degree
    return TorchEngine(model, forward, optimizer, sharded)
