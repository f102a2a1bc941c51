"""Step guards: decide, after backward and before the optimizer step, whether an update is
applied. `StepGuard.check(loss, grad_norm, step)` returns None (apply) or the reason to skip:

    nonfinite    the loss or the global grad norm is NaN/Inf (fp16 overflow, a bad batch)
    loss_spike   the loss is more than `spike_zscore` standard deviations above the mean of
                 the last `spike_window` applied steps (a bad batch, an LR too high)
    grad_spike   the same test on the global grad norm (before clipping), `grad_zscore`

A skipped step still advances the step counter and the data position, so the offending
batch is dropped, not retried. When spikes persist (`rollback_after` in a row) the guard sets
`rollback_due`: the trainer then rolls back to the last good checkpoint and skips the data
window since it (`train/rollback.py`), at most `max_rollbacks` times per run. After
`max_bad_steps` skips in a row (NaN/Inf, or spikes no rollback could cure) the run stops with
`TrainingDivergedError` naming the cause and the remedies. The windows are loop state: they
are checkpointed (`state_dict`) so a resumed run makes the same decisions bitwise.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from llmtrain.config.core import ConfigSection
from llmtrain.errors import ConfigError, LLMTrainError

SPIKES = ("loss_spike", "grad_spike")


class TrainingDivergedError(LLMTrainError):
    """Too many consecutive steps had to be skipped; the message says why and what to try."""


@dataclass
class StabilityConfig(ConfigSection):
    _prefix = "stability"

    max_bad_steps: int = 5  # stop after this many skipped steps in a row (1 = at the first)
    spike_zscore: float = 6.0  # skip a step whose loss is this many std above the window (0 = off)
    # the same for the global grad norm before clipping; 0 = off (the default: at 6 it skipped
    # 6 of 2000 steps of the Tiny Shakespeare recipe, 4 in a row at an LR-driven bump with a
    # normal loss — a level shift that skipping cannot cure, one short of stopping the run)
    grad_zscore: float = 0.0
    spike_window: int = 100  # applied steps the mean/std are taken over
    spike_min_history: int = 50  # no spike test before this many applied steps
    rollback_after: int = 3  # spikes in a row that roll back to the last good checkpoint (0 = off)
    max_rollbacks: int = 3  # rollbacks per run; persisting spikes after them stop the run

    def validate(self) -> None:
        if self.max_bad_steps < 1:
            raise ConfigError(f"stability.max_bad_steps must be >= 1, got {self.max_bad_steps}")
        for name in ("spike_zscore", "grad_zscore"):
            if getattr(self, name) < 0:
                raise ConfigError(f"stability.{name} must be >= 0, got {getattr(self, name)}")
        if self.spike_window < 2 or not 2 <= self.spike_min_history <= self.spike_window:
            raise ConfigError(
                "need 2 <= stability.spike_min_history <= stability.spike_window; got "
                f"{self.spike_min_history} and {self.spike_window}"
            )
        if self.rollback_after < 0 or self.max_rollbacks < 0:
            raise ConfigError(
                "stability.rollback_after and stability.max_rollbacks must be >= 0; got "
                f"{self.rollback_after} and {self.max_rollbacks}"
            )
        if self.rollback_after > self.max_bad_steps:
            raise ConfigError(
                f"stability.rollback_after ({self.rollback_after}) must be <= "
                f"stability.max_bad_steps ({self.max_bad_steps}), or the run stops before it "
                "could roll back; set stability.rollback_after=0 to never roll back"
            )


@dataclass(frozen=True)
class BadStep:
    step: int  # steps done before it (the trainer's `step` while it ran)
    reason: str
    loss: float
    grad_norm: float

    def __str__(self) -> str:
        return f"step {self.step}: {self.reason} (loss {self.loss:.4g}, grad norm {self.grad_norm:.4g})"


def window_stats(window: deque[float]) -> tuple[float, float]:
    """(mean, denominator) of the z-score of a value against `window`."""
    n = len(window)
    mean = sum(window) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in window) / (n - 1))
    return mean, max(std, 1e-8 * max(abs(mean), 1.0))


def zscore(window: deque[float], x: float) -> float:
    mean, denom = window_stats(window)
    return (x - mean) / denom


class StepGuard:
    def __init__(self, cfg: StabilityConfig, lr_hint: str = ""):
        self.cfg, self.lr_hint = cfg, lr_hint
        self.window: deque[float] = deque(maxlen=cfg.spike_window)  # losses of applied steps
        self.grad_window: deque[float] = deque(maxlen=cfg.spike_window)  # their grad norms
        self.bad_in_a_row = 0
        self.skipped = 0
        self.rollbacks = 0
        self.can_roll_back = True  # False while no good checkpoint precedes the current spikes
        self.bad: list[BadStep] = []  # the current run of skipped steps

    def zscore(self, loss: float) -> float:
        return zscore(self.window, loss)

    def _reason(self, loss: float, grad_norm: float) -> str | None:
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            return "nonfinite"
        if len(self.window) < self.cfg.spike_min_history:
            return None
        if self.cfg.spike_zscore > 0 and zscore(self.window, loss) > self.cfg.spike_zscore:
            return "loss_spike"
        grads = self.grad_window  # empty in checkpoints written before it existed
        enough = len(grads) >= self.cfg.spike_min_history
        if self.cfg.grad_zscore > 0 and enough and zscore(grads, grad_norm) > self.cfg.grad_zscore:
            return "grad_spike"
        return None

    def thresholds(self) -> tuple[tuple[float, float, float] | None, ...]:
        """The spike tests `_reason` will apply to the next step, as (mean, denom, zscore
        limit) for the loss and the grad norm (None = no test): a function of the applied
        steps so far only, so the device can take the same decision (`train/step_stats.py`)."""
        if len(self.window) < self.cfg.spike_min_history:
            return None, None
        loss = None
        if self.cfg.spike_zscore > 0:
            loss = (*window_stats(self.window), self.cfg.spike_zscore)
        grads, grad = self.grad_window, None
        if self.cfg.grad_zscore > 0 and len(grads) >= self.cfg.spike_min_history:
            grad = (*window_stats(grads), self.cfg.grad_zscore)
        return loss, grad

    def check(self, loss: float, grad_norm: float, step: int) -> str | None:
        reason = self._reason(loss, grad_norm)
        if reason is None:
            self.window.append(loss)
            self.grad_window.append(grad_norm)
            self.bad_in_a_row, self.bad, self.can_roll_back = 0, [], True
            return None
        self.bad_in_a_row += 1
        self.skipped += 1
        self.bad.append(BadStep(step, reason, loss, grad_norm))
        if not self.rollback_due and self.bad_in_a_row >= self.cfg.max_bad_steps:
            raise TrainingDivergedError(self.diagnosis(reason))
        return reason

    @property
    def rollback_due(self) -> bool:
        """Spikes persisted `rollback_after` steps in a row and a rollback is still allowed."""
        n = self.cfg.rollback_after
        return (
            n > 0
            and self.can_roll_back
            and self.rollbacks < self.cfg.max_rollbacks
            and len(self.bad) >= n
            and all(b.reason in SPIKES for b in self.bad[-n:])
        )

    def diagnosis(self, reason: str) -> str:
        what = (
            "the loss or gradients were NaN/Inf"
            if reason == "nonfinite"
            else "the loss or grad norm stayed far above its recent level"
        )
        tried = ""
        if reason in SPIKES and self.cfg.rollback_after > 0 and self.cfg.max_rollbacks > 0:
            tried = (
                f" after {self.rollbacks} rollback(s) to earlier checkpoints (see bad_windows.jsonl)"
                if self.rollbacks
                else " and no checkpoint before the spikes could be rolled back to"
            )
        return (
            f"training stopped: {self.bad_in_a_row} steps in a row were skipped because {what}"
            f"{tried} ({'; '.join(str(b) for b in self.bad[-3:])}). Resume from the last "
            f"checkpoint with a lower train.lr{self.lr_hint}, keep train.grad_clip > 0, try "
            "train.precision=fp32 or bf16 instead of fp16, or raise stability.max_bad_steps / "
            "stability.spike_zscore / stability.grad_zscore / stability.max_rollbacks"
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "window": list(self.window),
            "grad_window": list(self.grad_window),
            "bad_in_a_row": self.bad_in_a_row,
            "skipped": self.skipped,
            "rollbacks": self.rollbacks,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.window = deque(state.get("window", []), maxlen=self.cfg.spike_window)
        self.grad_window = deque(state.get("grad_window", []), maxlen=self.cfg.spike_window)
        self.bad_in_a_row = int(state.get("bad_in_a_row", 0))
        self.skipped = int(state.get("skipped", 0))
        self.rollbacks = int(state.get("rollbacks", 0))
        self.bad = []
