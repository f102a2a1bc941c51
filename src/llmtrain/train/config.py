"""`TrainConfig` (the loop's knobs) and `RunConfig` (every section of a run), plus
`load_run_config`, which resolves defaults < preset < files < `--set` overrides into one
validated object. Key names are stable: users and scripts rely on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from llmtrain.config import (
    ConfigSection,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    deep_merge,
    load_json_file,
)
from llmtrain.distributed.config import DistributedConfig
from llmtrain.errors import ConfigError
from llmtrain.eval.config import EvalConfig
from llmtrain.finetune.config import FinetuneConfig
from llmtrain.models.config import ModelConfig
from llmtrain.monitor.config import MonitorConfig
from llmtrain.objectives.config import ObjectiveConfig, check_objective
from llmtrain.optim.config import OptimConfig
from llmtrain.train.faults import StabilityConfig


@dataclass
class TrainConfig(ConfigSection):
    _prefix = "train"

    max_steps: int = 1000  # optimizer steps to train for
    batch_size: int = 32  # GLOBAL batch: sequences per optimizer step, whatever the hardware
    # sequences per device per forward; None = batch_size / world size (the same config runs
    # on 1 process and under torchrun; --auto-micro-batch lowers it if memory needs)
    micro_batch_size: int | None = None
    lr: float = 6e-4  # peak learning rate (after warm-up)
    min_lr: float = 6e-5  # the LR the schedule decays to
    warmup_steps: int = 100  # linear LR warm-up from lr/warmup_steps to lr
    # cosine | linear | constant | inverse_sqrt | exponential | step | wsd (optim/schedule.py)
    # | plateau (val-loss driven, train/lr_control.py)
    lr_schedule: Literal[
        "cosine", "linear", "constant", "inverse_sqrt", "exponential", "step", "wsd", "plateau"
    ] = "cosine"
    lr_decay_steps: int | None = None  # None = max_steps
    wsd_decay_fraction: float = 0.2  # wsd: share of the run spent decaying (also under --max-time)
    plateau_factor: float = 0.5  # plateau: LR multiplier per reduction
    plateau_patience: int = 2  # plateau: evals without improvement before a reduction
    plateau_threshold: float = 1e-3  # plateau: relative val-loss improvement that counts
    batch_warmup_steps: int = 0  # ramp the batch from batch_size_start over these steps
    batch_size_start: int | None = None  # sequences at step 0 (multiple of micro x world)
    seq_warmup_steps: int = 0  # ramp sequence length from seq_len_start over these steps
    seq_len_start: int | None = None  # tokens per row at step 0 (rounded to a block divisor)
    auto_micro_batch: bool = False  # pick the largest micro-batch that fits (--auto-micro-batch)
    grad_clip: float = 1.0  # 0 disables clipping
    eval_every: int = 250  # steps between val evaluations (and at the end)
    eval_tokens: int = 262144  # val tokens per periodic eval (the whole split if smaller)
    checkpoint_every: int = 1000  # steps between checkpoints (and at the end / on a stop)
    keep_last: int = 3  # checkpoints kept on disk (0 = keep all)
    log_every: int = 10  # steps between train records in metrics.jsonl and the console
    seed: int = 1337  # seeds init, data order and objectives (0 .. 2**32-1)
    # auto = bf16 where supported (CPU, Ampere+), fp16 with loss scaling on older GPUs
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto = cuda when available
    compile: Literal["auto", "on", "off"] = "auto"  # torch.compile; auto = on CUDA only
    # what one compiled graph covers: blocks = each block alone (FSDP / TP / checkpoint
    # wrappers stay outside); model = the whole forward (embedding, blocks, head) as nanoGPT
    # does (one process or DDP only). Same speed on an H200 (gpt2-124m 478k vs 475k tokens/s,
    # llama-1b 66.9k vs 67.4k), but 3x the compile time: blocks by default
    compile_scope: Literal["blocks", "model"] = "blocks"
    # Inductor's mode for those graphs: default | max-autotune-no-cudagraphs (searches matmul
    # kernels: minutes more compile) | reduce-overhead / max-autotune (+ CUDA graphs: the
    # step replays captured kernels, no launch cost; CUDA, one process; gradients then stay
    # in fixed buffers, zeroed in place). Ignored when nothing is compiled (CPU by default)
    compile_mode: Literal[
        "default", "max-autotune-no-cudagraphs", "reduce-overhead", "max-autotune"
    ] = "default"
    # keep loss / grad norm on the device and read them a step late, the NaN/spike guard's
    # decisions taken on the device (train/step_stats.py); auto = on CUDA with fused AdamW
    sync_free: Literal["auto", "on", "off"] = "auto"
    threads: int | None = None  # CPU threads for torch; None = all cores
    # clm | prefix_lm (decoder); mlm | sop | nsp | electra (encoder); span (encoder_decoder)
    objective: Literal["clm", "prefix_lm", "mlm", "sop", "nsp", "span", "electra"] = "clm"
    # decoder models: write a short generated sample to metrics.jsonl every N steps (0 = off)
    sample_every: int = 0
    max_time_sec: float | None = None  # training-time budget: checkpoint and stop (--max-time)

    def validate(self) -> None:
        positive = (
            "max_steps",
            "batch_size",
            "eval_every",
            "eval_tokens",
            "checkpoint_every",
            "log_every",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"train.{name} must be positive, got {getattr(self, name)}")
        micro = self.micro_batch_size
        if micro is not None and micro <= 0:
            raise ConfigError(f"train.micro_batch_size must be positive or null, got {micro}")
        if micro is not None and self.batch_size % micro != 0:
            raise ConfigError(
                f"train.batch_size ({self.batch_size}) must be a multiple of "
                f"train.micro_batch_size ({micro}); e.g. set train.micro_batch_size="
                f"{_largest_divisor_at_most(self.batch_size, micro)}"
            )
        if self.lr <= 0 or self.min_lr < 0 or self.min_lr > self.lr:
            raise ConfigError(
                f"need 0 <= train.min_lr <= train.lr and train.lr > 0; got lr={self.lr}, "
                f"min_lr={self.min_lr}"
            )
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"train.seed must be in [0, 2**32), got {self.seed}")
        at_least_0 = ("warmup_steps", "keep_last", "sample_every")
        for name in at_least_0:
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if self.grad_clip < 0:
            raise ConfigError(f"train.grad_clip must be >= 0 (0 disables), got {self.grad_clip}")
        for name in ("threads", "lr_decay_steps", "batch_size_start", "seq_len_start"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ConfigError(f"train.{name} must be positive or null, got {v}")
        if self.max_time_sec is not None and self.max_time_sec < 0:
            raise ConfigError(f"train.max_time_sec must be >= 0 or null, got {self.max_time_sec}")
        self._validate_schedule_knobs()

    def _validate_schedule_knobs(self) -> None:
        checks = [
            ("wsd_decay_fraction", 0 < self.wsd_decay_fraction <= 1, "in (0, 1]"),
            ("plateau_factor", 0 < self.plateau_factor < 1, "in (0, 1)"),
            ("plateau_patience", self.plateau_patience >= 1, ">= 1"),
            ("plateau_threshold", self.plateau_threshold >= 0, ">= 0"),
            ("batch_warmup_steps", self.batch_warmup_steps >= 0, ">= 0"),
            ("seq_warmup_steps", self.seq_warmup_steps >= 0, ">= 0"),
        ]
        for name, ok, want in checks:
            if not ok:
                raise ConfigError(f"train.{name} must be {want}, got {getattr(self, name)}")

    def micro_for(self, world_size: int = 1) -> int:
        """Sequences per rank per forward: `micro_batch_size`, or batch_size / world size."""
        if self.micro_batch_size is not None:
            return self.micro_batch_size
        if self.batch_size % world_size != 0:
            raise ConfigError(
                f"train.batch_size ({self.batch_size}) must be divisible by the world size "
                f"({world_size} processes); pick a multiple of {world_size}"
            )
        return self.batch_size // world_size

    @property
    def micro(self) -> int:
        """The micro-batch of a resolved config (one process when it was left unset)."""
        return self.micro_for(1)

    def grad_accum(self, world_size: int = 1) -> int:
        """Micro-batches per optimizer step on each rank: batch / (micro × world)."""
        micro = self.micro_for(world_size)
        per_step = micro * world_size
        if self.batch_size % per_step != 0:
            raise ConfigError(
                f"train.batch_size ({self.batch_size}) is not divisible by "
                f"train.micro_batch_size ({micro}) x world size ({world_size}); "
                "pick a global batch that is a multiple of their product"
            )
        return self.batch_size // per_step


def _largest_divisor_at_most(n: int, k: int) -> int:
    return max(d for d in range(1, min(n, k) + 1) if n % d == 0)


@dataclass
class DataConfig(ConfigSection):
    _prefix = "data"

    path: str = ""  # the prepared DATA_DIR (set by --data)


@dataclass
class RunConfig(ConfigSection):
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)  # objective options
    stability: StabilityConfig = field(default_factory=StabilityConfig)  # NaN/spike guards
    eval: EvalConfig = field(default_factory=EvalConfig)  # benchmark tasks during training
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)  # `llmtrain finetune`

    def validate(self) -> None:
        check_objective(self.train.objective, self.model)  # e.g. mlm needs an encoder
        if self.eval.tasks and not self.model.causal:
            raise ConfigError(
                "eval.tasks scores choices by causal log-likelihood; a bidirectional "
                f"{self.model.architecture} has none: remove eval.tasks for this run"
            )
        lr_decay = self.train.lr_decay_steps
        if lr_decay is not None and lr_decay < self.train.warmup_steps:
            raise ConfigError(
                f"train.lr_decay_steps ({lr_decay}) must be >= train.warmup_steps "
                f"({self.train.warmup_steps})"
            )

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)


def load_run_config(
    files: list[str | Path] = (),  # type: ignore[assignment]
    preset: str | None = None,
    overrides: list[str] = (),  # type: ignore[assignment]
    base: dict[str, Any] | None = None,
) -> RunConfig:
    """Resolve a run config: defaults < `base` < preset < each file in order < overrides."""
    from llmtrain.train.presets import get_run_preset

    data: dict[str, Any] = dict(base or {})
    if preset:
        data = deep_merge(data, get_run_preset(preset))
    for f in files:
        data = deep_merge(data, load_json_file(f))
    data = apply_overrides(data, list(overrides))
    data.pop("$schema", None)
    data.pop("comment", None)
    return config_from_dict(RunConfig, data)
