"""Learning-rate schedules as pure functions of the step (nothing to checkpoint).

warmup: linear from lr/warmup to lr over `warmup_steps` (step 0 already gets a non-zero LR,
as in nanoGPT); then, with p = (step - warmup) / (decay_steps - warmup) in [0, 1):

    cosine        min_lr + (lr - min_lr) · ½(1 + cos πp)
    linear        min_lr + (lr - min_lr) · (1 - p)
    constant      lr (no decay)
    inverse_sqrt  lr · sqrt(warmup / (step + 1))            (Vaswani et al.; floors at min_lr)
    exponential   lr · (min_lr / lr)^p                      (geometric from lr to min_lr)
    step          lr · 0.1^k, k = number of 1/3-way marks passed (floors at min_lr)
    wsd           warmup-stable-decay: lr until the last `decay_fraction` of the run, then
                  linear to min_lr (Hu et al. 2024, MiniCPM); `decay_start` overrides where
                  the decay starts (a deadline planner sets it at run time)
    plateau       lr, as constant: the reductions on a val-loss plateau are run state,
                  applied by `train/lr_control.py` (this is the LR before any reduction)

Past `decay_steps` the LR stays at `min_lr` (except `constant` and `plateau`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

SCHEDULES = (
    "cosine",
    "linear",
    "constant",
    "inverse_sqrt",
    "exponential",
    "step",
    "wsd",
    "plateau",
)


def lr_at(
    step: int,
    *,
    lr: float,
    min_lr: float,
    warmup_steps: int,
    decay_steps: int,
    schedule: str = "cosine",
    decay_fraction: float = 0.2,
    decay_start: int | None = None,
) -> float:
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if schedule in ("constant", "plateau"):
        return lr
    if schedule == "inverse_sqrt":
        return max(min_lr, lr * math.sqrt(max(1, warmup_steps) / (step + 1)))
    if step >= decay_steps:
        return min_lr
    if schedule == "wsd":
        start = decay_start
        if start is None:
            start = decay_steps - round(decay_fraction * (decay_steps - warmup_steps))
        if step < start:
            return lr
        return lr + (min_lr - lr) * (step - start) / max(1, decay_steps - start)
    span = max(1, decay_steps - warmup_steps)
    progress = (step - warmup_steps) / span  # in [0, 1)
    if schedule == "linear":
        coeff = 1.0 - progress
    elif schedule == "cosine":
        coeff = 0.5 * (1.0 + math.cos(math.pi * progress))
    elif schedule == "exponential":
        return lr * (max(min_lr, 1e-12 * lr) / lr) ** progress
    elif schedule == "step":
        return max(min_lr, lr * 0.1 ** math.floor(3 * progress))
    else:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {SCHEDULES}")
    return min_lr + coeff * (lr - min_lr)


def schedule_of(train: Mapping[str, Any]) -> dict[str, Any]:
    """`lr_at`'s keyword arguments for a train config section (its fields as a dict: a
    `TrainConfig`'s or a run's config.json "train"). The trainer and the diagnosis both read
    the schedule through this, so they cannot disagree; a missing key that the schedule uses
    raises KeyError (there are no second defaults here)."""
    kw = {
        "lr": train["lr"],
        "min_lr": train["min_lr"],
        "warmup_steps": train["warmup_steps"],
        "decay_steps": train.get("lr_decay_steps") or train["max_steps"],
        "schedule": train["lr_schedule"],
    }
    if kw["schedule"] == "wsd":
        kw["decay_fraction"] = train["wsd_decay_fraction"]
    return kw
