"""The training engine: the few points where the loop hands over to whoever owns the
gradients — backward, clip + grad norm, optimizer step, zero_grad, checkpoint save/load.

`TorchEngine` (one process, DDP, FSDP2, tensor parallel) is plain autograd and the torch
optimizer; `DeepSpeedEngine` (distributed/deepspeed_engine.py) hands all of it to DeepSpeed.
`build_engine` picks one from `distributed.strategy`; nothing else branches on the name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from llmtrain.checkpoint import load_checkpoint, save_checkpoint
from llmtrain.distributed.config import DistributedConfig
from llmtrain.distributed.parallelize import full_norm
from llmtrain.distributed.process_group import DistInfo


@dataclass(frozen=True)
class CheckpointParts:
    """What an engine checkpoints: the model and optimizer checkpoint.io saves and restores, or
    `write`/`read` hooks that replace that part (DeepSpeed's own format)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer | None
    sharded: bool = False  # DCP (FSDP2, tensor parallel)
    write: Callable[[Path], None] | None = None
    read: Callable[[Path], None] | None = None


class Engine(ABC):
    """The loop's interface; subclasses own the gradient steps and name their `CheckpointParts`,
    and every engine saves and loads through checkpoint.io the same way."""

    forward: nn.Module  # what the loop calls for the forward pass
    steps_torch_optimizer: bool  # the loop may step the torch optimizer itself (sync-free)

    @abstractmethod
    def backward(self, loss: torch.Tensor) -> None: ...
    @abstractmethod
    def clip_grad_norm(self, max_norm: float) -> torch.Tensor: ...
    @abstractmethod
    def step(self) -> None: ...
    @abstractmethod
    def zero_grad(self) -> None: ...
    @abstractmethod
    def reported_grad_norm(self, before_step: float) -> float: ...
    @abstractmethod
    def checkpoint_parts(self) -> CheckpointParts: ...

    def save(
        self,
        root: Path,
        step: int,
        state: dict,
        config: dict,
        keep_last: int,
        protect: Path | None = None,  # never pruned (the last verified one)
    ) -> Path:
        """Collective: write checkpoint `step` under `root` and prune to `keep_last`."""
        parts = self.checkpoint_parts()
        return save_checkpoint(
            root,
            step,
            parts.model,
            parts.optimizer,
            state,
            config,
            keep_last,
            sharded=parts.sharded,
            protect=protect,
            write_weights=parts.write,
        )

    def load(
        self, ckpt_dir: Path, verify: bool = True, require: tuple[str, ...] = ("step",)
    ) -> dict[str, Any]:
        """Collective: restore weights, optimizer and RNG; return the loop state."""
        parts = self.checkpoint_parts()
        return load_checkpoint(
            ckpt_dir,
            parts.model,
            parts.optimizer,
            verify=verify,
            require=require,
            load_weights=parts.read,
        )


class TorchEngine(Engine):
    """Autograd + the torch optimizer; checkpoints full (DDP, one process) or sharded DCP
    (FSDP2, tensor parallel: loadable on any world size and TP degree)."""

    steps_torch_optimizer = True

    def __init__(
        self,
        model: nn.Module,
        forward: nn.Module,
        optimizer: torch.optim.Optimizer,
        sharded: bool,
        keep_grads: bool = False,
    ) -> None:
        self.model, self.forward, self.optimizer, self.sharded = model, forward, optimizer, sharded
        # CUDA graphs: a gradient the captured backward wrote would be overwritten by its next
        # replay, so gradients accumulate into buffers allocated here, once, and zeroed in place
        self.keep_grads = keep_grads
        if keep_grads:
            for p in model.parameters():
                if p.requires_grad and p.grad is None:
                    p.grad = torch.zeros_like(p)

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def clip_grad_norm(self, max_norm: float) -> torch.Tensor:
        """Clip in place; the total norm before clipping (a plain tensor, also under DTensor)."""
        return full_norm(torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))

    def step(self) -> None:
        self.optimizer.step()

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=not self.keep_grads)

    def reported_grad_norm(self, before_step: float) -> float:
        return before_step

    def checkpoint_parts(self) -> CheckpointParts:
        return CheckpointParts(self.model, self.optimizer, sharded=self.sharded)


def build_engine(
    run: Any,
    info: DistInfo,
    model: nn.Module,
    forward: nn.Module,
    optimizer: torch.optim.Optimizer,
    keep_grads: bool = False,
) -> Engine:
    """The engine of `run.distributed.strategy` around a parallelized model and its optimizer
    (`run` is the RunConfig: DeepSpeed checks its options against train.* and optim.*);
    `keep_grads`: fixed gradient buffers, zeroed in place (what CUDA graphs need)."""
    cfg: DistributedConfig = run.distributed
    if cfg.strategy == "deepspeed":
        from llmtrain.distributed.deepspeed_engine import DeepSpeedEngine

        return DeepSpeedEngine(run, info, model, optimizer)
    sharded = cfg.strategy == "fsdp" or info.tp > 1  # DCP: any world size, any TP degree
    return TorchEngine(model, forward, optimizer, sharded, keep_grads)
