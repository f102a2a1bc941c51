"""Learning-rate schedules as pure functions of the step (nothing to checkpoint).

warmup: linear from lr/warmup to lr over `warmup_steps` (step 0 already gets a non-zero LR,
as in nanoGPT); then decay to `min_lr` at `decay_steps` by `cosine`, `linear` or `constant`
(no decay); past `decay_steps` the LR stays at `min_lr`.
"""

from __future__ import annotations

import math

SCHEDULES = ("cosine", "linear", "constant")


def lr_at(
    step: int,
    *,
    lr: float,
    min_lr: float,
    warmup_steps: int,
    decay_steps: int,
    schedule: str = "cosine",
) -> float:
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return lr
    if step >= decay_steps:
        return min_lr
    span = max(1, decay_steps - warmup_steps)
    progress = (step - warmup_steps) / span  # in [0, 1)
    if schedule == "linear":
        coeff = 1.0 - progress
    elif schedule == "cosine":
        coeff = 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        raise ValueError(f"unknown schedule {schedule!r}")
    return min_lr + coeff * (lr - min_lr)
