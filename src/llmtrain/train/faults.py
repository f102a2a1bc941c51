"""Step guards: decide, after backward and before the optimizer step, whether an update is
applied. `StepGuard.check(loss, grad_norm)` returns None (apply) or the reason to skip:

    nonfinite    the loss or the global grad norm is NaN/Inf (fp16 overflow, a bad batch)
    loss_spike   the loss is more than `spike_zscore` standard deviations above the mean of
                 the last `spike_window` applied steps (a bad batch, an LR too high)

A skipped step still advances the step counter and the data position, so the offending
batch is dropped, not retried. After `max_bad_steps` skips in a row the run stops with
`TrainingDivergedError` naming the cause and the remedies. The guard's window is loop state:
it is checkpointed (`state_dict`) so a resumed run makes the same decisions bitwise.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from llmtrain.errors import ConfigError, LLMTrainError


class TrainingDivergedError(LLMTrainError):
    """Too many consecutive steps had to be skipped; the message says why and what to try."""


@dataclass
class StabilityConfig:
    max_bad_steps: int = 5  # stop after this many skipped steps in a row (1 = at the first)
    spike_zscore: float = 6.0  # skip a step whose loss is this many std above the window (0 = off)
    spike_window: int = 100  # applied steps the mean/std are taken over
    spike_min_history: int = 50  # no spike test before this many applied steps

    def validate(self) -> None:
        if self.max_bad_steps < 1:
            raise ConfigError(f"stability.max_bad_steps must be >= 1, got {self.max_bad_steps}")
        if self.spike_zscore < 0:
            raise ConfigError(f"stability.spike_zscore must be >= 0, got {self.spike_zscore}")
        if self.spike_window < 2 or not 2 <= self.spike_min_history <= self.spike_window:
            raise ConfigError(
                "need 2 <= stability.spike_min_history <= stability.spike_window; got "
                f"{self.spike_min_history} and {self.spike_window}"
            )


class StepGuard:
    def __init__(self, cfg: StabilityConfig, lr_hint: str = ""):
        self.cfg, self.lr_hint = cfg, lr_hint
        self.window: deque[float] = deque(maxlen=cfg.spike_window)
        self.bad_in_a_row = 0
        self.skipped = 0
        self.reasons: list[str] = []  # the reasons of the current run of skips

    def zscore(self, loss: float) -> float:
        n = len(self.window)
        mean = sum(self.window) / n
        std = math.sqrt(sum((x - mean) ** 2 for x in self.window) / (n - 1))
        return (loss - mean) / max(std, 1e-8 * max(abs(mean), 1.0))

    def check(self, loss: float, grad_norm: float, step: int) -> str | None:
        reason = None
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            reason = "nonfinite"
        elif (
            self.cfg.spike_zscore > 0
            and len(self.window) >= self.cfg.spike_min_history
            and self.zscore(loss) > self.cfg.spike_zscore
        ):
            reason = "loss_spike"
        if reason is None:
            self.window.append(loss)
            self.bad_in_a_row, self.reasons = 0, []
            return None
        self.bad_in_a_row += 1
        self.skipped += 1
        self.reasons.append(f"step {step}: {reason} (loss {loss:.4g}, grad norm {grad_norm:.4g})")
        if self.bad_in_a_row >= self.cfg.max_bad_steps:
            raise TrainingDivergedError(self.diagnosis(reason))
        return reason

    def diagnosis(self, reason: str) -> str:
        what = (
            "the loss or gradients were NaN/Inf"
            if reason == "nonfinite"
            else "the loss stayed far above its recent level"
        )
        return (
            f"training stopped: {self.bad_in_a_row} steps in a row were skipped because {what} "
            f"({'; '.join(self.reasons[-3:])}). Resume from the last checkpoint with a lower "
            f"train.lr{self.lr_hint}, keep train.grad_clip > 0, try train.precision=fp32 or "
            "bf16 instead of fp16, or raise stability.max_bad_steps / stability.spike_zscore"
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "window": list(self.window),
            "bad_in_a_row": self.bad_in_a_row,
            "skipped": self.skipped,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.window = deque(state.get("window", []), maxlen=self.cfg.spike_window)
        self.bad_in_a_row = int(state.get("bad_in_a_row", 0))
        self.skipped = int(state.get("skipped", 0))
