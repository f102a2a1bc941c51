"""What the planner needs to know about a device: its memory, peak, bf16 support, and the
FLOP/s a real train step achieves on it (measured with the one Trainer on the user's data)."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from llmtrain.errors import ConfigError

CPU_MEMORY_SHARE = 0.5  # of MemAvailable a CPU run may plan to use
GPU_MEMORY_SHARE = 0.85  # of the GPU's memory (allocator fragmentation, eval, workspaces)


@dataclass
class DeviceFacts:
    kind: str  # "cpu" | "cuda"
    describe: str
    memory_limit: float  # bytes the plan may use
    peak_flops: float | None
    bf16: bool
    default_seq: int


def device_facts(device: str, gpu: str | None, memory_limit_gb: float | None) -> DeviceFacts:
    """Facts of the local device, or of a named GPU (`gpu`, for GPU-hour plans made here)."""
    from llmtrain.monitor.probes import _GPU_PEAKS
    from llmtrain.train.auto_micro import available_memory_bytes
    from llmtrain.train.precision import cpu_has_native_bf16

    limit = None if memory_limit_gb is None else memory_limit_gb * 2**30
    if gpu is not None:
        name = gpu.upper()
        peak = next((p for key, p in _GPU_PEAKS if key in name), None)
        if peak is None:
            known = ", ".join(k.lower() for k, _ in _GPU_PEAKS)
            raise ConfigError(f"unknown GPU {gpu!r} for --gpu; choose one of {known}")
        memory = {"A100": 80, "H100": 80, "H200": 141, "B200": 180}.get(name, 24) * 2**30
        return DeviceFacts("cuda", f"{name} (named, not measured here)",
                           limit or memory * GPU_MEMORY_SHARE, peak, True, 1024)  # fmt: skip
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda but no CUDA GPU is visible; use --device cpu or --gpu NAME")  # fmt: skip
        from llmtrain.monitor.probes import peak_flops

        dev = torch.device("cuda", 0)
        total = torch.cuda.get_device_properties(dev).total_memory
        return DeviceFacts("cuda", torch.cuda.get_device_name(dev),
                           limit or total * GPU_MEMORY_SHARE, peak_flops(dev),
                           torch.cuda.is_bf16_supported(), 1024)  # fmt: skip
    threads = torch.get_num_threads()
    return DeviceFacts("cpu", f"CPU, {threads} threads",
                       limit or available_memory_bytes() * CPU_MEMORY_SHARE, None,
                       cpu_has_native_bf16(), 256)  # fmt: skip


def measure_flops_per_sec(
    data: str | Path, model: dict[str, Any], facts: DeviceFacts, steps: int = 3
) -> float:
    """FLOP/s achieved by the real training step of `model` on `data` (one warm-up step,
    then `steps` timed), counted with `models/flops.py`."""
    from llmtrain.train.config import load_run_config
    from llmtrain.train.trainer import Trainer

    micro = 4
    sets = {"data.path": json.dumps(str(data)), "train.batch_size": micro,
            "train.micro_batch_size": micro, "train.max_steps": steps + 1,
            "train.device": facts.kind, "train.compile": "off", "monitor.detail_every": 0}  # fmt: skip
    overrides = [f"model.{k}={json.dumps(v)}" for k, v in model.items()]
    overrides += [f"{k}={v}" for k, v in sets.items()]
    with tempfile.TemporaryDirectory(prefix="llmtrain-plan-") as tmp:
        tr = Trainer(load_run_config([], None, overrides), Path(tmp) / "probe", show_progress=False)
        sync = torch.cuda.synchronize if facts.kind == "cuda" else (lambda: None)
        tr.train_step()  # warm-up
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            tr.train_step()
        sync()
        seconds = time.perf_counter() - t0
        fpt = tr.flops_per_token
        tr.logger.close()  # fit() was never called: close its metrics file before the dir goes
    return steps * micro * model["block_size"] * fpt / seconds
