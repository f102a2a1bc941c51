"""Synthetic metric streams: a healthy run and one per failure the diagnosis must catch.

A healthy stream follows a power law towards an irreducible loss with multiplicative noise,
logs the LR of the configured schedule, keeps grad norms and throughput steady, and evaluates
with a small, stable train/val gap. Each `broken_*` function edits such a stream."""

from __future__ import annotations

import math
import random
from pathlib import Path

from llmtrain.monitor.runs import RunData
from llmtrain.optim.schedule import lr_at


def config(steps: int = 1000, log_every: int = 10, eval_every: int = 100, **train) -> dict:
    t = {
        "max_steps": steps,
        "lr": 6e-4,
        "min_lr": 6e-5,
        "warmup_steps": 50,
        "lr_schedule": "cosine",
        "lr_decay_steps": None,
        "log_every": log_every,
        "eval_every": eval_every,
        "grad_clip": 1.0,
        "batch_size": 32,
        "micro_batch_size": None,
        "precision": "bf16",
    }
    t.update(train)
    return {"train": t, "model": {"vocab_size": 512}, "data": {"path": ""}}


def healthy(seed: int = 0, noise: float = 0.02, **cfg_kw) -> RunData:
    rng = random.Random(seed)
    cfg = config(**cfg_kw)
    t = cfg["train"]
    run = RunData(run_dir=Path(f"/synthetic/healthy{seed}"), name=f"healthy{seed}", config=cfg)
    kw = dict(
        lr=t["lr"],
        min_lr=t["min_lr"],
        warmup_steps=t["warmup_steps"],
        decay_steps=t["lr_decay_steps"] or t["max_steps"],
        schedule=t["lr_schedule"],
    )
    clean = lambda s: 1.8 + 4.4 * (1 + s / 40) ** -0.6  # noqa: E731
    for step in range(t["log_every"], t["max_steps"] + 1, t["log_every"]):
        loss = clean(step) * math.exp(rng.gauss(0, noise))
        tps = 20000 * math.exp(rng.gauss(0, 0.05))
        run.add(
            {
                "step": step,
                "tokens": step * 8192,
                "loss": loss,
                "ppl": math.exp(loss),
                "lr": lr_at(step - 1, **kw),
                "grad_norm": (0.25 + 1.5 / (1 + step / 50)) * math.exp(rng.gauss(0, 0.15)),
                "tokens_per_sec": tps,
                "elapsed_sec": step * 8192 / 20000,
                "step_ms": 400.0,
                "data_wait_ms": 8.0,
                "compute_ms": 392.0,
                "data_wait_frac": 0.02 * math.exp(rng.gauss(0, 0.2)),
                "skipped_steps": 0,
                "max_memory_reserved_gb": 40.0,
                "memory_limit_gb": 80.0,
                "param_norm": 120.0 + step / 100,
                "update_norm": 0.1,
                "update_ratio": 1e-3,
            }
        )
        if step % t["eval_every"] == 0 or step == t["max_steps"]:
            val = clean(step) + 0.04 + rng.gauss(0, 0.005)
            run.add(
                {
                    "step": step,
                    "tokens": step * 8192,
                    "val_loss": val,
                    "val_ppl": math.exp(val),
                    "val_bpb": val / math.log(2) / 3.5,
                    "elapsed_sec": step * 8192 / 20000,
                }
            )
    return run


def _edit(run: RunData, key: str, fn) -> RunData:
    for r in run.train:
        r[key] = fn(r["step"], r[key])
    return run


def broken_nan() -> RunData:
    return _edit(healthy(), "loss", lambda s, v: math.nan if s >= 640 else v)


def broken_lr_too_low() -> RunData:
    run = healthy(lr=1e-7, min_lr=1e-8)
    return _edit(run, "loss", lambda s, v: math.log(512) * (1 + 0.003 * math.sin(s)))


def broken_lr_too_high() -> RunData:
    rng = random.Random(1)
    run = healthy(lr=3e-2, min_lr=3e-3)
    return _edit(run, "loss", lambda s, v: 7.5 * math.exp(rng.gauss(0, 0.15)))


def broken_divergence() -> RunData:
    return _edit(healthy(), "loss", lambda s, v: v if s < 500 else v + 0.02 * (s - 500))


def broken_spikes() -> RunData:
    return _edit(healthy(), "loss", lambda s, v: v * 1.6 if s in (400, 410, 720) else v)


def broken_overfitting() -> RunData:
    run = healthy()
    for r in run.evals:
        if r["step"] > 400:
            r["val_loss"] += 0.0015 * (r["step"] - 400)
    return run


def broken_grad_explode() -> RunData:
    return _edit(healthy(), "grad_norm", lambda s, v: v * math.exp(max(0, s - 600) / 40))


def broken_grad_vanish() -> RunData:
    return _edit(healthy(), "grad_norm", lambda s, v: v * math.exp(-max(0, s - 400) / 15))


def broken_lr_schedule() -> RunData:
    return _edit(healthy(), "lr", lambda s, v: 6e-4)  # constant, while the config says cosine


def broken_throughput() -> RunData:
    return _edit(healthy(), "tokens_per_sec", lambda s, v: v if s < 600 else v * 0.4)


def broken_data_wait() -> RunData:
    return _edit(healthy(), "data_wait_frac", lambda s, v: 0.55)


def broken_memory() -> RunData:
    return _edit(healthy(), "max_memory_reserved_gb", lambda s, v: 78.5 if s > 100 else v)


def broken_moe() -> RunData:
    run = healthy()
    for r in run.train:
        r["moe_load"] = [[0.25, 0.25, 0.25, 0.25], [0.62, 0.37, 0.005, 0.005]]
        r["moe_router_entropy"] = [1.38, 0.7]
    return run


def broken_skipped() -> RunData:
    return _edit(healthy(precision="fp16"), "skipped_steps", lambda s, v: s // 8)


FAILURES = {
    "nan": broken_nan,
    "loss_not_falling": broken_lr_too_low,
    "divergence": broken_divergence,
    "loss_spikes": broken_spikes,
    "overfitting": broken_overfitting,
    "grad_norm_exploding": broken_grad_explode,
    "grad_norm_vanishing": broken_grad_vanish,
    "lr_schedule": broken_lr_schedule,
    "throughput_drop": broken_throughput,
    "data_wait": broken_data_wait,
    "memory_near_limit": broken_memory,
    "moe_imbalance": broken_moe,
    "skipped_steps": broken_skipped,
}
