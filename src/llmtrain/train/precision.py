"""Device and numeric precision: picks the device, the autocast dtype and whether to compile.

`auto` precision is bf16 autocast on CUDA GPUs that support it and on CPUs with native bf16
matrix units (AVX512_BF16 / AMX), fp32 otherwise. fp16 uses dynamic loss scaling (CUDA only).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from llmtrain.errors import ConfigError


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (AVX512_BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


@dataclass(frozen=True)
class Precision:
    device: torch.device
    autocast_dtype: torch.dtype | None  # None = plain fp32
    use_grad_scaler: bool
    compile: bool

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.autocast_dtype]

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)


def resolve_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("train.device='cuda' but no CUDA GPU is visible; use 'auto' or 'cpu'")
        # under torchrun each process owns GPU LOCAL_RANK
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def flush_cpu_subnormals(device: torch.device) -> None:
    """On CPU, compute with subnormal floats (|x| < 1.2e-38, fp32 and bf16) as zero (x86
    FTZ/DAZ). As a model trains its attention sharpens, the softmax that the attention's
    backward recomputes puts exp(s - max) of ignored keys in that range, and x86 cores take
    each such operand through a slow microcode path: a 3-layer run's step at step 536 took
    1.05 s instead of 0.75 s, 387 ms of it in that backward instead of 106 (`bench/
    subnormals.py --profile`). A zero for 1e-39 moves no reported digit. Process-wide, like
    `torch.set_num_threads`; GPUs are not affected."""
    if device.type == "cpu":
        torch.set_flush_denormal(True)


def resolve_precision(precision: str, device_name: str, compile_mode: str) -> Precision:
    device = resolve_device(device_name)
    cuda = device.type == "cuda"
    if precision == "auto":
        if cuda:
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.bfloat16 if cpu_has_native_bf16() else None
    elif precision == "bf16":
        if cuda and not torch.cuda.is_bf16_supported():
            raise ConfigError("train.precision='bf16' but this GPU has no bf16; use 'fp16'")
        dtype = torch.bfloat16
    elif precision == "fp16":
        if not cuda:
            raise ConfigError(
                "train.precision='fp16' needs a CUDA GPU; on CPU use 'bf16' or 'fp32'"
            )
        dtype = torch.float16
    else:
        dtype = None
    # torch.compile on CPU measured only 2-4 % faster here with a ~40 s cold start: off by
    # default there; on by default on CUDA where it pays for itself.
    compiled = compile_mode == "on" or (compile_mode == "auto" and cuda)
    return Precision(device, dtype, use_grad_scaler=dtype is torch.float16, compile=compiled)
