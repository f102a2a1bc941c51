"""`make_plan(data, budget)`: a complete run config from a compute budget, with its reasoning.

One dial, the depth, derives the rest (`plan/shape.py`). The budget becomes FLOPs through
this machine's measured speed: a real train step of a probe model on the data gives the
achieved FLOP/s (`plan/throughput.py`); a budget in GPU-hours for a named GPU uses its peak
and an assumed utilisation instead. Then, for each depth, with N the matmul parameters and
F = FLOPs per token (`models/flops.py`):

    tokens  D = TOKENS_PER_PARAM · N              (Hoffmann et al. 2022: ~20 tokens/parameter)
    time    D · F / achieved FLOP/s               (the deepest model whose D fits the budget)
    batch   B = 0.2920 · C^0.3271 tokens          (DeepSeek-AI 2024, "DeepSeek LLM" §3.1,
    LR      η = 0.3118 · C^-0.1250                 fitted on C = compute FLOPs of the run)

and the whole budget is spent: the chosen model trains for budget × achieved FLOP/s / F
tokens (a little over 20 per parameter), ending on a WSD schedule whose decay the trainer
places at the deadline (`train.max_time_sec`, Hägele et al. 2024: a 20 % cool-down matches
cosine). When those tokens are more than MAX_EPOCHS passes over the data the plan says so;
it repeats the data up to MAX_USEFUL_EPOCHS passes before it grows the model (Muennighoff et
al. 2023, "Scaling Data-Constrained Language Models": up to ~4 epochs repeated tokens are
almost as good as new, and excess epochs lose value more slowly than excess parameters, so
extra compute goes to epochs first): the model grows past the compute-optimal one only as much
as keeps the run within 16 epochs. The budget is always spent whole.
The micro-batch is the largest that the
memory estimate (`plan/memory.py`) fits into the device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from llmtrain.data.shards import read_manifest
from llmtrain.errors import ConfigError
from llmtrain.models.flops import flops_per_token, matmul_params
from llmtrain.plan.memory import MemoryEstimate, fit_micro_batch
from llmtrain.plan.shape import MAX_DEPTH, model_config, model_fields

TOKENS_PER_PARAM = 20.0
MAX_EPOCHS = 4.0  # repeated data as good as new (Muennighoff et al. 2023)
MAX_USEFUL_EPOCHS = 16.0  # beyond this, repetition stops paying (ibid.)
MIN_STEPS = 200  # enough optimizer steps for warm-up, a stable phase and the decay
EVAL_SHARE = 0.1  # of the wall budget kept for evals, checkpoints and start-up
ASSUMED_GPU_MFU = 0.40  # GPU-hours budgets for a GPU not measured here (nanoGPT: 43 % on H200)


@dataclass
class Budget:
    """Exactly one of: wall minutes on this machine, GPU-hours of a named GPU, or FLOPs."""

    minutes: float | None = None
    gpu_hours: float | None = None
    flops: float | None = None

    def __post_init__(self) -> None:
        given = [x for x in (self.minutes, self.gpu_hours, self.flops) if x is not None]
        if len(given) != 1:
            raise ConfigError("give exactly one budget: --minutes, --gpu-hours or --flops")
        if not (math.isfinite(given[0]) and given[0] > 0):
            raise ConfigError(f"the budget must be a positive number, got {given[0]}")

    @classmethod
    def parse(cls, text: str) -> Budget:
        """'10m', '2h', '3gpuh' / '3gpu-hours', '1e17flops' (the `train --plan` syntax)."""
        t = text.strip().lower().replace(" ", "")
        units = [("gpu-hours", "gpu_hours", 1.0), ("gpuh", "gpu_hours", 1.0),
                 ("flops", "flops", 1.0), ("min", "minutes", 1.0), ("m", "minutes", 1.0),
                 ("h", "minutes", 60.0), ("s", "minutes", 1 / 60)]  # fmt: skip
        for suffix, kind, scale in units:
            if t.endswith(suffix):
                try:
                    value = float(t[: -len(suffix)])
                except ValueError:
                    break
                return cls(**{kind: value * scale})
        raise ConfigError(
            f"cannot read the budget {text!r}; write e.g. 10m, 2h, 4gpuh or 1e17flops"
        )


@dataclass
class Plan:
    config: dict[str, Any]
    reasoning: list[str]
    memory: MemoryEstimate
    estimates: dict[str, Any] = field(default_factory=dict)


def lr_and_batch(compute: float) -> tuple[float, float]:
    """(peak LR, batch in tokens) for a run of `compute` FLOPs (DeepSeek LLM, eq. 1)."""
    return 0.3118 * compute**-0.1250, 0.2920 * compute**0.3271


def _pow2_floor(x: float) -> int:
    return 1 << max(0, int(math.floor(math.log2(max(1.0, x)))))


def make_plan(
    data: str | Path,
    budget: Budget,
    *,
    family: str = "gpt2",
    device: str = "auto",
    seq: int | None = None,
    gpu: str | None = None,
    memory_limit_gb: float | None = None,
    measure=None,
) -> Plan:
    """The plan for training a `family` decoder (CLM) on prepared `data` within `budget`."""
    from llmtrain.plan.throughput import device_facts, measure_flops_per_sec

    manifest = read_manifest(data)
    vocab = int(manifest["tokenizer"]["vocab_size"])
    data_tokens = int(manifest["splits"]["train"]["tokens"])
    facts = device_facts(device, gpu, memory_limit_gb)
    seq = seq or facts.default_seq
    why: list[str] = [
        f"device: {facts.describe}; data: {data_tokens:,} train tokens, vocab {vocab:,}"
    ]
    if budget.minutes is not None:
        seconds = budget.minutes * 60.0
        probe = model_fields(family, 4, vocab, seq)
        achieved = (measure or measure_flops_per_sec)(data, probe, facts)
        why.append(f"measured here: {achieved / 1e9:,.1f} GFLOP/s achieved by a train step "
                   f"of a depth-4 probe (seq {seq})")  # fmt: skip
    elif budget.gpu_hours is not None:
        if facts.peak_flops is None:
            raise ConfigError("a --gpu-hours budget needs a known GPU: pass --gpu h100 (or a100, h200, ...)")  # fmt: skip
        seconds, achieved = budget.gpu_hours * 3600.0, facts.peak_flops * ASSUMED_GPU_MFU
        why.append(f"{facts.describe}: {facts.peak_flops / 1e12:,.0f} TFLOP/s peak x assumed "
                   f"{ASSUMED_GPU_MFU:.0%} utilisation")  # fmt: skip
    else:
        seconds, achieved = None, None
    train_seconds = None if seconds is None else seconds * (1 - EVAL_SHARE)
    compute = budget.flops if budget.flops is not None else train_seconds * achieved

    def shape(depth: int) -> tuple[dict, float, int]:
        f = model_fields(family, depth, vocab, seq)
        cfg = model_config(f)
        return f, flops_per_token(cfg, seq), matmul_params(cfg)

    depth = 1
    for d in range(1, MAX_DEPTH + 1):  # deepest model whose ~20 tokens/param fit the compute
        _, fpt, n = shape(d)
        if TOKENS_PER_PARAM * n * fpt <= compute:
            depth = d
    fields, fpt, n_params = shape(depth)
    tokens = compute / fpt
    if TOKENS_PER_PARAM * n_params * fpt > compute:
        why.append(f"even depth 1 ({n_params:,} params) wants {TOKENS_PER_PARAM * n_params:,.0f} "
                   f"tokens; the budget buys {tokens:,.0f}: it trains under-fed")  # fmt: skip
        if tokens < 50 * seq:
            raise ConfigError(
                f"the budget buys only {tokens:,.0f} tokens of the smallest model (depth 1): "
                "too small to train anything; give a larger budget"
            )
    why.append(f"depth {depth} -> n_embd {fields['n_embd']}, {fields['n_head']} heads: "
               f"{n_params / 1e6:.2f}M matmul params, {fpt / 1e6:.2f} MFLOP/token")  # fmt: skip
    epochs = tokens / max(1, data_tokens)
    if epochs > MAX_EPOCHS:  # data-bound: repeat the data (up to 16 epochs) before growing N
        why.append(f"data-bound: the compute-optimal model needs {tokens:,.0f} tokens = "
                   f"{epochs:.1f} epochs of this data (Muennighoff et al. 2023: repeated tokens "
                   f"are almost as good as new up to ~{MAX_EPOCHS:g} epochs and keep value up "
                   f"to ~{MAX_USEFUL_EPOCHS:g}, longer than extra parameters do). More text "
                   "would buy a better model")  # fmt: skip
    if epochs > MAX_USEFUL_EPOCHS:  # only then does the compute go to parameters
        while depth < MAX_DEPTH and compute / shape(depth)[1] > MAX_USEFUL_EPOCHS * data_tokens:
            depth += 1  # the smallest model that the budget trains for <= 16 epochs
        fields, fpt, n_params = shape(depth)
        tokens = min(compute / fpt, MAX_USEFUL_EPOCHS * data_tokens)
        if tokens < compute / fpt:
            why.append(f"the data cannot use the whole budget: even depth {MAX_DEPTH} would "
                       f"repeat it more than {MAX_USEFUL_EPOCHS:g} times; the run stops at "
                       f"{MAX_USEFUL_EPOCHS:g} epochs, {tokens * fpt / compute:.0%} of the budget")  # fmt: skip
            compute = tokens * fpt
        why.append(f"past {MAX_USEFUL_EPOCHS:g} epochs the compute goes to parameters: depth "
                   f"{depth} ({n_params / 1e6:.2f}M params) trains {tokens / data_tokens:.1f} "
                   "epochs in the budget")  # fmt: skip
    epochs = tokens / max(1, data_tokens)
    lr, batch_tokens = lr_and_batch(compute)
    batch = _pow2_floor(batch_tokens / seq)
    while batch > 1 and tokens / (batch * seq) < MIN_STEPS:
        batch //= 2
    steps = max(1, int(tokens // (batch * seq)))
    why.append(f"compute C = {compute:.3g} FLOPs -> batch {batch_tokens:,.0f} tokens "
               f"(= {batch} x {seq}), peak LR {lr:.2e} (DeepSeek LLM fits); {steps:,} steps, "
               f"{tokens / max(1, n_params):.1f} tokens/param, {epochs:.2f} epochs")  # fmt: skip
    autocast = torch.bfloat16 if facts.bf16 else None
    # the run fuses its LM head with the loss where it does not compile (CPU, by default)
    micro, mem = fit_micro_batch(model_config(fields), batch, facts.memory_limit,
                                 autocast_dtype=autocast, fused_loss=facts.kind == "cpu")  # fmt: skip
    why.append(f"memory: micro-batch {micro} (accumulation {batch // micro}); estimated peak "
               f"{mem.peak / 2**20:,.0f} MiB of {facts.memory_limit / 2**20:,.0f} MiB allowed")  # fmt: skip
    if mem.peak > facts.memory_limit:
        why.append("WARNING: even micro-batch 1 is estimated over the limit")
    warmup = min(max(10, steps // 20), 2000)
    train = {
        "objective": "clm", "max_steps": steps, "batch_size": batch, "micro_batch_size": micro,
        "lr": float(f"{lr:.3g}"), "min_lr": float(f"{lr / 10:.3g}"), "warmup_steps": warmup,
        "lr_schedule": "wsd", "wsd_decay_fraction": 0.2, "grad_clip": 1.0,
        "eval_every": max(1, steps // 10), "checkpoint_every": max(1, steps // 4),
        "log_every": max(1, min(50, steps // 50)),
    }  # fmt: skip
    if seconds is not None and budget.minutes is not None:
        train["max_time_sec"] = round(seconds * (1 - EVAL_SHARE / 2), 1)
        why.append(f"deadline: train.max_time_sec {train['max_time_sec']} s, the WSD decay "
                   "placed to end at it")  # fmt: skip
    config = {
        "data": {"path": str(data)},
        "model": fields,
        "train": train,
        "optim": {"weight_decay": 0.1, "beta1": 0.9, "beta2": 0.95},
    }
    est = {"depth": depth, "params": n_params, "tokens": int(tokens), "compute_flops": compute,
           "flops_per_token": fpt, "steps": steps, "epochs": tokens / max(1, data_tokens),
           "achieved_flops_per_sec": achieved, "seconds": seconds}  # fmt: skip
    return Plan(config, why, mem, est)
