"""`distributed.strategy = deepspeed`: DeepSpeed ZeRO 1/2/3 owns backward, clipping and the
optimizer step (`deepspeed.initialize` around our model and our torch optimizer, so optim.*
and the LR schedule stay llmtrain's). The DeepSpeed JSON config (`distributed.deepspeed_config`,
the field's `ds_config.json`) gives the ZeRO section; batch sizes, accumulation and clipping
left out or set to "auto" are filled from train.*, and values that disagree are refused.
Checkpoints are DeepSpeed's own (`engine.save_checkpoint`) inside our step directory, plus a
model.safetensors converted with DeepSpeed's zero_to_fp32 (checkpoint/deepspeed.py), so
eval/generate/export read them like any other. Launch with `deepspeed`, `torchrun` or
`accelerate launch`: the process group is joined by `init_distributed` first, either way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from llmtrain.distributed.config import DistributedConfig
from llmtrain.distributed.engine import CheckpointParts, Engine
from llmtrain.distributed.process_group import DistInfo
from llmtrain.errors import ConfigError

HINT = "pip install 'llmtrain[deepspeed]'"
REFUSED_SECTIONS = ("optimizer", "scheduler")  # llmtrain builds both (optim.*, train.lr*)


def import_deepspeed() -> Any:
    try:
        import deepspeed
    except ImportError:
        raise ConfigError(
            f"distributed.strategy=deepspeed needs DeepSpeed, which is not installed: {HINT}"
        ) from None
    return deepspeed


def read_ds_config(cfg: DistributedConfig) -> dict[str, Any]:
    if cfg.deepspeed_config is None:
        ds: dict[str, Any] = {"zero_optimization": {"stage": 1}}
    else:
        path = Path(cfg.deepspeed_config)
        try:
            ds = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(
                f"distributed.deepspeed_config {path} is not a readable JSON file ({e})"
            ) from None
        ds = ds.get("deepspeed", ds)  # a section of a larger file is accepted too
    if cfg.zero_stage is not None:
        ds.setdefault("zero_optimization", {})["stage"] = cfg.zero_stage
    return ds


def _fill(ds: dict[str, Any], key: str, ours: Any, source: str) -> None:
    value = ds.get(key, "auto")
    if value == "auto":
        ds[key] = ours
    elif value != ours:
        raise ConfigError(
            f"the DeepSpeed config sets {key}={value} but {source} gives {ours}; set it to "
            f'"auto" (or remove it) so llmtrain fills it in'
        )


def deepspeed_config(cfg: DistributedConfig, train: Any, info: DistInfo, run: Any) -> dict:
    """The config passed to deepspeed.initialize, checked against the run's own options."""
    ds = read_ds_config(cfg)
    for section in REFUSED_SECTIONS:
        if section in ds:
            raise ConfigError(
                f'the DeepSpeed config has an "{section}" section; llmtrain builds the optimizer '
                "(optim.*) and the LR schedule (train.lr, warmup, decay): remove it"
            )
    stage = int(ds.get("zero_optimization", {}).get("stage", 0))
    check_zero_options(stage, ds, run)
    accum = train.grad_accum(world_size=info.dp_size)
    _fill(ds, "train_micro_batch_size_per_gpu", train.micro, "train.micro_batch_size")
    _fill(ds, "gradient_accumulation_steps", accum, "train.batch_size / (micro x world)")
    _fill(ds, "train_batch_size", train.batch_size, "train.batch_size")
    _fill(ds, "gradient_clipping", float(max(train.grad_clip, 0.0)), "train.grad_clip")
    ds["zero_allow_untested_optimizer"] = True  # torch's AdamW/SGD/Adafactor: ours
    ds.setdefault("steps_per_print", 10**9)  # llmtrain prints the progress
    return ds


def check_zero_options(stage: int, ds: dict[str, Any], run: Any) -> None:
    """One-line refusals of what ZeRO cannot do with this run's options."""
    if run.train.precision == "fp16":
        raise ConfigError(
            "distributed.strategy=deepspeed with train.precision=fp16: DeepSpeed scales the loss "
            'itself; set "fp16": {"enabled": true} in the DeepSpeed config and train.precision=fp32'
        )
    if run.optim.name == "muon":
        raise ConfigError(
            f"ZeRO stage {stage} partitions the optimizer state but optim.name=muon "
            "orthogonalises whole matrices; use optim.name=adamw with deepspeed"
        )
    if run.train.auto_micro_batch:
        raise ConfigError(
            "train.auto_micro_batch is not supported with distributed.strategy=deepspeed; "
            "set train.micro_batch_size explicitly"
        )
    zero = ds.get("zero_optimization", {})
    if zero.get("offload_param") and stage != 3:
        raise ConfigError(
            f"zero_optimization.offload_param needs ZeRO stage 3 (the config has stage {stage}); "
            "use offload_optimizer for stage 1/2, or set the stage to 3"
        )
    offloaded = [k for k in ("offload_optimizer", "offload_param") if zero.get(k)]
    if offloaded and ds.get("zero_force_ds_cpu_optimizer", True):
        raise ConfigError(
            f"ZeRO stage {stage} with zero_optimization.{offloaded[0]}: ZeRO-Offload steps with "
            "DeepSpeed's CPU Adam, but llmtrain builds the optimizer (optim.*); remove the "
            'offload, or set "zero_force_ds_cpu_optimizer": false to run ours on the CPU (slow)'
        )


class DeepSpeedEngine(Engine):
    """The loop's engine interface over a `deepspeed.DeepSpeedEngine`."""

    steps_torch_optimizer = False  # DeepSpeed's step wraps ours: no sync-free path

    def __init__(
        self, run: Any, info: DistInfo, model: nn.Module, optimizer: torch.optim.Optimizer
    ) -> None:
        deepspeed = import_deepspeed()
        ds = deepspeed_config(run.distributed, run.train, info, run)
        backend = "gloo" if not torch.cuda.is_available() else "nccl"
        if not dist.is_initialized():  # one process: DeepSpeed still needs a group of one
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
            for var in ("LOCAL_RANK", "RANK"):  # what a launcher would have set
                os.environ.setdefault(var, "0")
            os.environ.setdefault("WORLD_SIZE", "1")
        deepspeed.init_distributed(dist_backend=backend, dist_init_required=False)
        self.engine, _, _, _ = deepspeed.initialize(
            model=model, optimizer=optimizer, config=ds, dist_init_required=False
        )
        self.model, self.forward, self.optimizer = model, self.engine, optimizer
        self.stage = self.engine.zero_optimization_stage()

    def backward(self, loss: torch.Tensor) -> None:
        # the loss is already normalised over the step's tokens: no 1/accumulation here
        self.engine.backward(loss, scale_wrt_gas=False)

    def clip_grad_norm(self, max_norm: float) -> torch.Tensor:
        return torch.zeros(())  # DeepSpeed clips inside step(); its norm is reported after it

    def step(self) -> None:
        self.engine.step()

    def zero_grad(self) -> None:
        self.engine.zero_grad()

    def reported_grad_norm(self, before_step: float) -> float:
        norm = self.engine.get_global_grad_norm()
        return float(norm) if norm is not None else before_step

    def checkpoint_parts(self) -> CheckpointParts:
        from llmtrain.checkpoint.deepspeed import weight_reader, weight_writer

        return CheckpointParts(
            self.engine.module,
            None,
            write=weight_writer(self.engine),
            read=weight_reader(self.engine),
        )
