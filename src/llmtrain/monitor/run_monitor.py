"""`RunMonitor`: the one object the trainer logs through. It fans each record out to
RUN_DIR/metrics.jsonl (always) and the configured trackers, reduces values across ranks and
writes on rank 0 only, and owns the in-loop probes (`probes.py`).

The trainer's side is a handful of calls: `watch(model, optimizer)`, `timed(batches)`,
`with monitor.step(step): ...`, `measurements(record)`, `log(record)`, `event(name, step)`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from llmtrain.distributed.process_group import current
from llmtrain.monitor.config import MonitorConfig
from llmtrain.monitor.dist import reduce_record
from llmtrain.monitor.metrics import MetricsLogger
from llmtrain.monitor.probes import (
    CountSteps,
    GpuStats,
    ParamStats,
    StepClock,
    memory_stats,
    moe_stats,
    peak_flops,
    timed_source,
)
from llmtrain.monitor.sinks import Sink, open_trackers


class RunMonitor:
    def __init__(
        self,
        cfg: MonitorConfig,
        run_dir: str | Path,
        config: dict[str, Any],
        resume_step: int | None = None,
        device: torch.device | None = None,
    ):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.device = device or torch.device("cpu")
        self.rank0 = current().is_rank0
        self.jsonl = (
            MetricsLogger(self.run_dir / "metrics.jsonl", resume_step=resume_step)
            if self.rank0
            else None
        )
        self.trackers: list[Sink] = open_trackers(cfg, self.run_dir, config) if self.rank0 else []
        self.clock = StepClock()
        self.gpu = GpuStats(self.device) if cfg.gpu_stats and self.rank0 else None
        self.peak_flops = peak_flops(self.device, cfg.peak_tflops)
        self.params: ParamStats | CountSteps | None = None
        self.model: torch.nn.Module | None = None
        self.overhead_sec = 0.0  # time spent in measurements() and log(), for the benchmark

    def watch(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Hook the optimizer: counts real steps (skips show up) and takes detail stats."""
        self.model = model
        if self.cfg.detail_every > 0:
            self.params = ParamStats(model, optimizer, self.cfg.detail_every, self.clock)
        else:
            self.params = CountSteps(optimizer, self.clock)

    def timed(self, batches: Any) -> Any:
        """Wrap the batch source so time spent fetching batches counts as data wait."""
        return timed_source(batches, self.clock)

    @contextlib.contextmanager
    def step(self, step: int) -> Iterator[None]:
        """Around one optimizer step (`step` = steps done before it)."""
        self.clock.begin(step)
        yield
        self.clock.end()

    def measurements(self, record: dict[str, Any]) -> dict[str, Any]:
        """Extra fields for a train record: step-time split, skipped steps, MFU, memory, GPU,
        and (at detail steps) per-group grad norms and parameter/update norms."""
        t0 = time.perf_counter()
        out: dict[str, Any] = self.clock.window_stats()
        if self.peak_flops and "flops_per_sec" in record:
            out["mfu"] = record["flops_per_sec"] / self.peak_flops
        out.update(memory_stats(self.device))
        if self.gpu is not None:
            out.update(self.gpu.read())
        if self.params is not None:
            out.update(self.params.take())
        if self.model is not None:
            out.update(moe_stats(self.model))
        self.overhead_sec += time.perf_counter() - t0
        return out

    def log(self, record: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        record = reduce_record(record, self.device)
        if self.rank0:
            assert self.jsonl is not None
            self.jsonl.log(record)
            for sink in self.trackers:
                sink.log(record)
        self.overhead_sec += time.perf_counter() - t0

    def event(self, name: str, step: int, **fields: Any) -> None:
        """A one-off happening (checkpoint written, ...) as its own metrics.jsonl line."""
        if self.rank0:
            record = {"step": step, "event": name, "time": time.time(), **fields}
            assert self.jsonl is not None
            self.jsonl.log(record)
            for sink in self.trackers:
                sink.log(record)

    def rewind(self, step: int) -> None:
        """Forget train/eval records after `step` (a spike rollback abandoned them)."""
        if self.jsonl is not None:
            self.jsonl.rewind(step)

    def close(self) -> None:
        if self.params is not None:
            self.params.remove()
        for sink in self.trackers:
            sink.close()
        if self.jsonl is not None:
            self.jsonl.close()
