"""Tracker sinks: TensorBoard, Weights & Biases and MLflow, each behind the same two calls
(`log(record)`, `close()`). Their packages are imported only when a sink is opened; a missing
package is a one-line hint and the run goes on without that sink (`open_trackers`).

Metric names are grouped for the trackers' UIs: `train/loss`, `val/loss`, `perf/...`,
`system/...`, and per-group keys keep their suffix (`grad_norm/blocks.0`)."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any, Protocol

from llmtrain.monitor.config import MonitorConfig

PERF_KEYS = {
    "tokens_per_sec",
    "flops_per_sec",
    "mfu",
    "step_ms",
    "data_wait_ms",
    "compute_ms",
    "data_wait_frac",
}
SYSTEM_PREFIXES = ("gpu_", "max_memory", "peak_rss", "memory_limit")


class Sink(Protocol):
    def log(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def tracker_key(key: str) -> str:
    """`val_loss` -> `val/loss`, `loss` -> `train/loss`, `tokens_per_sec` -> `perf/...`."""
    if "/" in key:
        return key  # already grouped, e.g. grad_norm/blocks.0
    if key.startswith("val_"):
        return "val/" + key[4:]
    if key in PERF_KEYS:
        return "perf/" + key
    if key.startswith(SYSTEM_PREFIXES):
        return "system/" + key
    return "train/" + key


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The record's finite numbers under tracker names (step/tokens/elapsed are axes; event
    records carry no metrics)."""
    out: dict[str, float] = {}
    if "event" in record:
        return out
    for k, v in record.items():
        if k in ("step", "tokens", "elapsed_sec") or isinstance(v, bool):
            continue
        if isinstance(v, (int, float)) and math.isfinite(v):
            out[tracker_key(k)] = float(v)
    return out


class TensorBoardSink:
    """Event files under RUN_DIR/tensorboard; also written: tokens and wall time as axes."""

    def __init__(self, log_dir: Path, config: dict[str, Any]):
        from torch.utils.tensorboard import SummaryWriter  # needs the `tensorboard` package

        self.writer = SummaryWriter(log_dir=str(log_dir))
        self.writer.add_text("config", _config_markdown(config), 0)

    def log(self, record: dict[str, Any]) -> None:
        step = int(record.get("step", 0))
        wall = record.get("elapsed_sec")
        for k, v in scalars(record).items():
            self.writer.add_scalar(k, v, step)
        if "event" in record:
            self.writer.add_text(f"events/{record['event']}", _event_text(record), step)
        if "loss" in record and wall is not None:
            self.writer.add_scalar("axes/tokens", float(record.get("tokens", 0)), step)
            self.writer.add_scalar("axes/elapsed_sec", float(wall), step)

    def close(self) -> None:
        self.writer.close()


class WandbSink:
    """A W&B run; offline by default (RUN_DIR/wandb/offline-run-*, `wandb sync` it later)."""

    def __init__(self, run_dir: Path, cfg: MonitorConfig, name: str, config: dict[str, Any]):
        import wandb

        os.environ.setdefault("WANDB_SILENT", "true")
        self.run = wandb.init(
            project=cfg.project,
            name=name,
            dir=str(run_dir),
            mode=cfg.wandb_mode,
            config=config,
            reinit="finish_previous",
        )
        self.run.define_metric("*", step_metric="trainer/step")

    def log(self, record: dict[str, Any]) -> None:
        values = scalars(record)
        if values:
            values["trainer/step"] = int(record.get("step", 0))
            values["trainer/tokens"] = int(record.get("tokens", 0))
            self.run.log(values)
        if "event" in record:
            self.run.summary[f"last_{record['event']}"] = _event_text(record)

    def close(self) -> None:
        self.run.finish()


class MlflowSink:
    """An MLflow run; metrics are sent asynchronously so a slow store never stalls training."""

    def __init__(self, run_dir: Path, cfg: MonitorConfig, name: str, config: dict[str, Any]):
        from mlflow.tracking import MlflowClient

        uri = cfg.mlflow_tracking_uri or f"sqlite:///{(run_dir / 'mlflow.db').resolve()}"
        self.client = MlflowClient(tracking_uri=uri)
        exp = self.client.get_experiment_by_name(cfg.project)
        exp_id = exp.experiment_id if exp else self.client.create_experiment(cfg.project)
        self.run_id = self.client.create_run(exp_id, run_name=name).info.run_id
        self.tracking_uri = uri
        from mlflow.entities import Param

        flat = _flatten(config)
        params = [Param(k, str(v)[:6000]) for k, v in flat.items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[i : i + 100])
        self._pending = []

    def log(self, record: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        step, ts = int(record.get("step", 0)), int(1000 * float(record.get("elapsed_sec", 0)))
        metrics = [Metric(k, v, ts, step) for k, v in scalars(record).items()]
        if metrics:
            self._pending.append(
                self.client.log_batch(self.run_id, metrics=metrics, synchronous=False)
            )

    def close(self) -> None:
        for fut in self._pending:
            fut.wait()
        self.client.set_terminated(self.run_id)


def open_trackers(cfg: MonitorConfig, run_dir: Path, config: dict[str, Any]) -> list[Sink]:
    """The trackers the config asks for; each that cannot start prints one line and is
    skipped (training never fails because a tracker is missing)."""
    name = cfg.run_name or run_dir.resolve().name
    wanted = [
        (
            "tensorboard",
            cfg.tensorboard,
            "tensorboard",
            lambda: TensorBoardSink(run_dir / "tensorboard", config),
        ),
        ("wandb", cfg.wandb, "wandb", lambda: WandbSink(run_dir, cfg, name, config)),
        (
            "mlflow",
            cfg.mlflow,
            "mlflow-skinny sqlalchemy alembic",
            lambda: MlflowSink(run_dir, cfg, name, config),
        ),
    ]
    sinks: list[Sink] = []
    for key, on, package, make in wanted:
        if not on:
            continue
        try:
            sinks.append(make())
        except ImportError as e:
            print(
                f"monitor: monitor.{key}=true but {e.name or 'its package'} is not installed; "
                f"`pip install {package}` (or `pip install llmtrain[monitor]`) to enable it; "
                "continuing without it",
                file=sys.stderr,
            )
        except (
            Exception
        ) as e:  # a tracker's own failure (bad URI, server down) must not kill training
            print(
                f"monitor: could not start {key} ({type(e).__name__}: {e}); continuing without it",
                file=sys.stderr,
            )
    return sinks


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _config_markdown(config: dict[str, Any]) -> str:
    return "\n".join(f"    {k} = {v!r}" for k, v in _flatten(config).items())


def _event_text(record: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in record.items() if k != "event")
