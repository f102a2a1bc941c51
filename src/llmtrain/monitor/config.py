"""`MonitorConfig`: the `monitor.*` section of a run config — which trackers receive the
metrics (JSONL and the console are always on) and how often the costlier in-loop
measurements (per-group gradient norms, parameter/update norms) are taken."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from llmtrain.config.core import ConfigSection
from llmtrain.errors import ConfigError


@dataclass
class MonitorConfig(ConfigSection):
    _prefix = "monitor"

    tensorboard: bool = False  # event files in RUN_DIR/tensorboard (`tensorboard --logdir`)
    wandb: bool = False  # Weights & Biases run in RUN_DIR/wandb
    wandb_mode: Literal["offline", "online"] = "offline"  # offline: `wandb sync` it later
    mlflow: bool = False  # MLflow run (metrics, params = the resolved config)
    mlflow_tracking_uri: str | None = None  # null = sqlite:///RUN_DIR/mlflow.db (local file)
    project: str = "llmtrain"  # W&B project / MLflow experiment
    run_name: str | None = None  # null = the run directory's name
    detail_every: int = 100  # steps between per-group grad / param / update norms (0 = off)
    gpu_stats: bool = True  # GPU utilisation, memory and power through NVML when present
    peak_tflops: float | None = None  # device peak for MFU; null = known GPUs' datasheet value

    def validate(self) -> None:
        if self.detail_every < 0:
            raise ConfigError(
                f"monitor.detail_every must be >= 0 (0 disables), got {self.detail_every}"
            )
        if self.peak_tflops is not None and self.peak_tflops <= 0:
            raise ConfigError(
                f"monitor.peak_tflops must be positive or null, got {self.peak_tflops}"
            )
        if not self.project:
            raise ConfigError("monitor.project must be a non-empty name, e.g. 'llmtrain'")
