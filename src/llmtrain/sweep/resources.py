"""Where a sweep's parallel workers run: `plan_slots(n)` gives each worker process one GPU
(CUDA_VISIBLE_DEVICES) or, on CPU, an equal share of the cores (torch threads = cores // n),
never more workers than devices or cores, so trials do not oversubscribe the machine."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass
class Slot:
    index: int
    label: str  # "cuda:1" or "cpu x4 threads"
    env: dict[str, str] = field(default_factory=dict)  # set in the worker process
    threads: int | None = None  # train.threads of its trials (CPU)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def visible_gpus() -> list[str]:
    """The GPU ids this process may use (honours an existing CUDA_VISIBLE_DEVICES)."""
    import torch

    count = torch.cuda.device_count()  # NVML: does not create a CUDA context here
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None and listed.strip():
        return [g.strip() for g in listed.split(",")][:count]
    return [str(i) for i in range(count)]


def plan_slots(
    n: int,
    device: str = "auto",
    gpus: list[str] | None = None,
    cores: int | None = None,
    say=print,
) -> list[Slot]:
    """`n` worker slots (fewer if the machine has fewer GPUs / cores, said on the console).
    `device`: auto (GPUs when present), cuda or cpu."""
    gpus = (visible_gpus() if device != "cpu" else []) if gpus is None else gpus
    if device == "cuda" and not gpus:
        from llmtrain.errors import ConfigError

        raise ConfigError("--device cuda but no GPU is visible; use --device cpu")
    if gpus:
        if n > len(gpus):
            say(f"sweep: {n} workers asked, {len(gpus)} GPU(s) visible: running {len(gpus)}")
            n = len(gpus)
        return [Slot(i, f"cuda:{g}", {"CUDA_VISIBLE_DEVICES": g}) for i, g in enumerate(gpus[:n])]
    cores = cores or available_cores()
    if n > cores:
        say(f"sweep: {n} workers asked, {cores} CPU core(s): running {cores}")
        n = cores
    threads = cores // n
    env = {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}  # fmt: skip
    return [Slot(i, f"cpu x{threads} threads", dict(env), threads) for i in range(n)]
