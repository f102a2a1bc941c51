"""In-loop measurements that only the training loop can take, kept out of `Trainer.fit()`:

- `StepClock`: wall time of each optimizer step split into data wait (time inside the batch
  source, wrapped by `timed_source`) and compute (the rest), and skipped optimizer steps;
- `ParamStats`: optimizer step hooks that, every `detail_every` steps, record per-group
  gradient norms, parameter norms and update norms (||Δθ||, and ||Δθ|| / ||θ||);
- `system_stats`: peak memory (CUDA allocator or process RSS) and NVML GPU utilisation,
  memory and power; `moe_stats`: per-expert load and router entropy of MoE layers;
- `peak_flops`: datasheet peak of known GPUs for MFU; on a CPU a measured peak
  (`cpu_peak_flops`: best of a few square matmuls in the run's dtype, cached)."""

from __future__ import annotations

import json
import math
import os
import platform
import re
import resource
import sys
import time
from collections import defaultdict
from typing import Any

import torch


class StepClock:
    """Accumulates step, data-wait and compute time over a logging window."""

    def __init__(self) -> None:
        self.data_sec = 0.0
        self._window = {"steps": 0, "step_sec": 0.0, "data_sec": 0.0}
        self.optimizer_steps = 0  # incremented by the optimizer post-hook
        self.watching = False  # True once a hook counts optimizer steps
        self.skipped_steps = 0
        self.probe_sec = 0.0  # time spent inside the optimizer hooks (for the benchmark)
        self.step = 0  # the number the running step will have once done (as in the records)

    def begin(self, step: int) -> None:
        self.step = step + 1
        self._t0 = time.perf_counter()
        self._data0 = self.data_sec
        self._opt0 = self.optimizer_steps

    def end(self) -> None:
        w = self._window
        w["steps"] += 1
        w["step_sec"] += time.perf_counter() - self._t0
        w["data_sec"] += self.data_sec - self._data0
        if self.watching and self.optimizer_steps == self._opt0:  # e.g. GradScaler: inf/NaN
            self.skipped_steps += 1

    def abandon(self) -> None:
        """The running step will run again (a rollback found due late): no update ran, and
        it is not counted as a skipped step."""
        self._opt0 = None

    def count_skipped(self) -> None:
        """A step whose optimizer call ran but applied nothing, known only after its window
        closed (sync-free steps: fused AdamW skipped it on the device, read a step late)."""
        if self.watching:
            self.skipped_steps += 1

    def window_stats(self) -> dict[str, float]:
        """Mean per-step times since the last call (then resets the window)."""
        w, self._window = self._window, {"steps": 0, "step_sec": 0.0, "data_sec": 0.0}
        out = {"skipped_steps": self.skipped_steps} if self.watching else {}
        if not w["steps"]:
            return out
        n = w["steps"]
        return out | {
            "step_ms": 1000 * w["step_sec"] / n,
            "data_wait_ms": 1000 * w["data_sec"] / n,
            "compute_ms": 1000 * (w["step_sec"] - w["data_sec"]) / n,
            "data_wait_frac": w["data_sec"] / max(w["step_sec"], 1e-12),
        }


class _TimedSource:
    """Proxy of a batch source: calls to `micro_batch` count as data wait."""

    def __init__(self, source: Any, clock: StepClock):
        self._source, self._clock = source, clock

    def micro_batch(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self._source.micro_batch(*args, **kwargs)
        finally:
            self._clock.data_sec += time.perf_counter() - t0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)


def timed_source(source: Any, clock: StepClock) -> Any:
    return _TimedSource(source, clock)


def group_of(name: str) -> str:
    """Layer group of a parameter: `blocks.3.attn.qkv.weight` -> `blocks.3`, `wte.weight`
    -> `wte`; any `<container>.<index>` prefix counts as one layer."""
    m = re.match(r"^(.*?\.\d+)\.", name)
    return m.group(1) if m else name.split(".")[0]


class ParamStats:
    """Every `every` optimizer steps: per-group grad norms (before the step, after clipping
    and unscaling), parameter norms and update norms. The pre-step snapshot of the weights
    lives only between the two hooks, after backward freed the activations, so it does not
    raise the step's peak memory."""

    def __init__(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, every: int, clock: StepClock
    ):
        self.every, self.clock = every, clock
        groups: dict[str, list[torch.nn.Parameter]] = defaultdict(list)
        for name, p in model.named_parameters():
            if p.requires_grad:
                groups[group_of(name)].append(p)
        self.groups = dict(groups)
        clock.watching = True
        self.latest: dict[str, float] = {}
        self._before: dict[str, list[torch.Tensor]] | None = None
        self._handles = [
            optimizer.register_step_pre_hook(self._pre),
            optimizer.register_step_post_hook(self._post),
        ]

    def _due(self) -> bool:
        return self.every > 0 and self.clock.step % self.every == 0

    @torch.no_grad()
    def _pre(self, *_: Any) -> None:
        if not self._due():
            return
        t0 = time.perf_counter()
        stats, self._before = {}, {}
        for g, ps in self.groups.items():
            grads = [p.grad for p in ps if p.grad is not None]
            if grads:
                stats[f"grad_norm/{g}"] = _norm(grads)
            self._before[g] = [p.detach().clone() for p in ps]
        self._pending = stats
        self.clock.probe_sec += time.perf_counter() - t0

    @torch.no_grad()
    def _post(self, *_: Any) -> None:
        due = self._due()
        self.clock.optimizer_steps += 1
        if not due or self._before is None:
            return
        t0 = time.perf_counter()
        stats, total_p, total_u = self._pending, 0.0, 0.0
        for g, ps in self.groups.items():
            p_norm = _norm([p.detach() for p in ps])
            u_norm = _norm([p.detach() - b for p, b in zip(ps, self._before[g])])
            stats[f"update_ratio/{g}"] = u_norm / max(p_norm, 1e-12)
            total_p, total_u = total_p + p_norm**2, total_u + u_norm**2
        stats["param_norm"], stats["update_norm"] = math.sqrt(total_p), math.sqrt(total_u)
        stats["update_ratio"] = stats["update_norm"] / max(stats["param_norm"], 1e-12)
        self._before, self.latest = None, stats
        self.clock.probe_sec += time.perf_counter() - t0

    def take(self) -> dict[str, float]:
        out, self.latest = self.latest, {}
        return out

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def _norm(tensors: list[torch.Tensor]) -> float:
    return float(
        torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(t.float()) for t in tensors])
        )
    )


class CountSteps:
    """Optimizer post-hook that only counts steps (when detail stats are off)."""

    def __init__(self, optimizer: torch.optim.Optimizer, clock: StepClock):
        self.clock = clock
        clock.watching = True
        self.handle = optimizer.register_step_post_hook(self._post)

    def _post(self, *_: Any) -> None:
        self.clock.optimizer_steps += 1

    def take(self) -> dict[str, float]:
        return {}

    def remove(self) -> None:
        self.handle.remove()


class GpuStats:
    """NVML readings of one GPU; `read()` is {} when NVML or the GPU is not there."""

    def __init__(self, device: torch.device):
        self.handle = None
        if device.type != "cuda":
            return
        try:
            import pynvml  # the `nvidia-ml-py` package

            pynvml.nvmlInit()
            index = device.index if device.index is not None else torch.cuda.current_device()
            self.nvml, self.handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(index)
        except Exception as e:  # no package, no driver: GPU stats are optional
            print(
                f"monitor: no NVML GPU stats ({type(e).__name__}: {e}); "
                "`pip install nvidia-ml-py` for utilisation and power",
                file=sys.stderr,
            )

    def read(self) -> dict[str, float]:
        if self.handle is None:
            return {}
        n, h = self.nvml, self.handle
        try:
            mem = n.nvmlDeviceGetMemoryInfo(h)
            return {
                "gpu_util": float(n.nvmlDeviceGetUtilizationRates(h).gpu),
                "gpu_mem_used_gb": mem.used / 2**30,
                "gpu_mem_total_gb": mem.total / 2**30,
                "gpu_power_w": n.nvmlDeviceGetPowerUsage(h) / 1000.0,
                "gpu_temp_c": float(n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU)),
            }
        except n.NVMLError:
            return {}


def memory_stats(device: torch.device) -> dict[str, float]:
    """Peak memory: the CUDA allocator's on a GPU (and the device's size), else process RSS."""
    if device.type == "cuda":
        return {
            "max_memory_gb": torch.cuda.max_memory_allocated(device) / 2**30,
            "max_memory_reserved_gb": torch.cuda.max_memory_reserved(device) / 2**30,
            "memory_limit_gb": torch.cuda.get_device_properties(device).total_memory / 2**30,
        }
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    scale = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes
    return {"peak_rss_gb": rss_kb * scale / 2**30}


def moe_stats(model: torch.nn.Module) -> dict[str, Any]:
    """Per-expert load and router entropy of every module that exposes `router_stats()`
    returning {"load": (E,) fraction of tokens per expert, "entropy": mean router entropy}.
    Recorded as `moe_load` (list per MoE layer) and `moe_router_entropy` (list per layer)."""
    loads, entropies = [], []
    for module in model.modules():
        fn = getattr(module, "router_stats", None)
        if callable(fn):
            s = fn()
            loads.append([round(float(x), 5) for x in s["load"]])
            entropies.append(float(s["entropy"]))
    return {"moe_load": loads, "moe_router_entropy": entropies} if loads else {}


# dense bf16/fp16 tensor-core peaks (FLOP/s) from the vendors' datasheets; fp32 runs use TF32
_GPU_PEAKS = [
    ("H200", 989e12),
    ("H100", 989e12),
    ("GH200", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
    ("A10", 125e12),
    ("V100", 125e12),
    ("4090", 165e12),
    ("3090", 71e12),
    ("T4", 65e12),
]


def peak_flops(
    device: torch.device, override_tflops: float | None = None, dtype: torch.dtype | None = None
) -> float | None:
    """Peak FLOP/s of the device for MFU, or None when unknown. On a CPU the peak is measured
    (`cpu_peak_flops(dtype)`) when a `dtype` is given, else None; `monitor.peak_tflops`
    overrides both."""
    if override_tflops:
        return override_tflops * 1e12
    if device.type != "cuda":
        return cpu_peak_flops(dtype) if dtype is not None else None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in _GPU_PEAKS if key in name), None)


def _cpu_key(dtype: torch.dtype) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):  # noqa: SIM115 (first match only)
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}|threads={torch.get_num_threads()}|{dtype}|torch={torch.__version__}"


_CPU_PEAKS: dict[str, float] = {}


def cpu_peak_flops(dtype: torch.dtype = torch.float32, n: int = 1024, reps: int = 5) -> float:
    """Measured CPU peak FLOP/s: the best of `reps` n×n @ n×n matmuls (2n³ FLOPs each) in
    `dtype` at the current thread count. Cached per (CPU, threads, dtype, torch) in memory and
    in $LLMTRAIN_CACHE_DIR (default ~/.cache/llmtrain)/cpu_peak_flops.json. Uses its own
    generator, so the run's RNG stream is untouched."""
    key = _cpu_key(dtype)
    if key in _CPU_PEAKS:
        return _CPU_PEAKS[key]
    cache_dir = os.environ.get("LLMTRAIN_CACHE_DIR") or os.path.expanduser("~/.cache/llmtrain")
    path = os.path.join(cache_dir, "cpu_peak_flops.json")
    try:
        with open(path) as f:
            cached = json.load(f)
    except (OSError, ValueError):
        cached = {}
    if key not in cached:
        g = torch.Generator().manual_seed(0)
        a = torch.randn(n, n, generator=g).to(dtype)
        b = torch.randn(n, n, generator=g).to(dtype)
        torch.mm(a, b)  # warm-up (thread pool, kernel selection)
        best = math.inf
        for _ in range(reps):
            t0 = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - t0)
        cached[key] = 2 * n**3 / max(best, 1e-9)
        try:
            os.makedirs(cache_dir, exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                json.dump(cached, f, indent=1)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only home: measure again next time
    _CPU_PEAKS[key] = float(cached[key])
    return _CPU_PEAKS[key]
