"""`LRController`: the learning rate of each step, for schedules that depend on what the run
sees, not only on the step — the two pieces of loop state that `optim.lr_at` cannot hold:

- `DeadlinePlan` (WSD + `--max-time`): from the measured time per step it starts the decay
  phase early enough that the run ends annealed at the deadline, instead of being cut off
  at full LR. The chosen decay start and end steps are checkpointed, so a resume replays
  exactly the same learning rates.
- `Plateau` (`train.lr_schedule = "plateau"`): warm-up, then the peak LR times
  `plateau_factor` after every `plateau_patience` evals without a relative improvement of
  `plateau_threshold` in val loss (floored at `train.min_lr`), as in
  `torch.optim.lr_scheduler.ReduceLROnPlateau`.

Every other schedule is `lr_at(step, ...)` unchanged (bit-identical to calling it directly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from llmtrain.distributed import all_sum
from llmtrain.optim import lr_at
from llmtrain.optim.schedule import schedule_of


@dataclass
class DeadlinePlan:
    """Decides, after each step, whether to start the WSD decay now so that it ends at the
    deadline. Decay length = `decay_fraction` of the steps after warm-up that fit in the
    budget (as WSD uses for a step budget). Rule, with τ the mean seconds per step measured
    since this process started (eval and checkpoint time included, amortised) and
    n = ⌊(max_time − elapsed) / τ⌋ − 1 the steps that still fit (one kept in reserve for the
    final eval + checkpoint): start when n ≤ ⌈f · (step + n − warmup)⌉, and end at step + n.
    Ranks agree: the planned end is averaged over ranks before it is fixed."""

    max_time_sec: float
    warmup_steps: int
    decay_steps: int  # the step budget's decay end (lr_decay_steps or max_steps)
    decay_fraction: float = 0.2
    device: Any = None  # for the cross-rank average (NCCL reduces on the GPU)
    decay_start: int | None = None
    decay_end: int | None = None
    _t0: tuple[int, float] | None = None  # (step, elapsed) after the first step we timed

    def observe(self, step: int, elapsed: float) -> None:
        """Call after each optimizer step; `step` = steps done, `elapsed` = training seconds."""
        if self.decay_start is not None:
            return
        if self._t0 is None:  # the first step of a process pays warm-up costs: not timed
            self._t0 = (step, elapsed)
            return
        steps, secs = step - self._t0[0], elapsed - self._t0[1]
        if steps <= 0 or step < self.warmup_steps:
            return
        tau = max(secs / steps, 1e-9)
        n = max(0, math.floor((self.max_time_sec - elapsed) / tau) - 1)
        end = step + n
        if end >= self.decay_steps:  # the step budget ends first: the normal WSD decay
            return
        if n <= math.ceil(self.decay_fraction * (end - self.warmup_steps)):
            world = all_sum(1.0, self.device)
            world_end = all_sum(float(end), self.device) / world
            self.decay_start, self.decay_end = step, max(step + 1, round(world_end))

    def finished(self, step: int) -> bool:
        """True once the planned decay is complete (the run may stop: it is annealed)."""
        return self.decay_end is not None and step >= self.decay_end


@dataclass
class Plateau:
    factor: float = 0.5
    patience: int = 2
    threshold: float = 1e-3
    best: float = math.inf
    bad_evals: int = 0
    reductions: int = 0

    def on_eval(self, val_loss: float) -> bool:
        """Record a val loss; True when it triggered a reduction."""
        if val_loss < self.best * (1.0 - self.threshold):
            self.best, self.bad_evals = val_loss, 0
            return False
        self.bad_evals += 1
        if self.bad_evals < self.patience:
            return False
        self.bad_evals, self.reductions = 0, self.reductions + 1
        return True


class LRController:
    def __init__(self, t: Any, device: Any = None):  # t: a TrainConfig
        self.t = t
        self.decay_steps = t.lr_decay_steps or t.max_steps
        self.plan = (
            DeadlinePlan(
                t.max_time_sec, t.warmup_steps, self.decay_steps, t.wsd_decay_fraction, device
            )
            if t.lr_schedule == "wsd" and t.max_time_sec
            else None
        )
        self.plateau = (
            Plateau(t.plateau_factor, t.plateau_patience, t.plateau_threshold)
            if t.lr_schedule == "plateau"
            else None
        )

    def lr(self, step: int) -> float:
        t, kw = self.t, schedule_of(self.t.__dict__)
        if self.plateau is not None:
            base = lr_at(step, **{**kw, "schedule": "constant"})
            return max(t.min_lr, base * self.plateau.factor**self.plateau.reductions)
        if self.plan is not None and self.plan.decay_start is not None:  # the deadline's plan
            kw["decay_start"], kw["decay_steps"] = self.plan.decay_start, self.plan.decay_end
        return lr_at(step, **kw)

    def after_step(self, step: int, elapsed: float) -> str | None:
        """Feed the step clock to the deadline plan; 'annealed' once its decay is done."""
        if self.plan is None:
            return None
        self.plan.observe(step, elapsed)
        return "annealed before the deadline" if self.plan.finished(step) else None

    def on_eval(self, val_loss: float) -> bool:
        return self.plateau.on_eval(val_loss) if self.plateau is not None else False

    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.plan is not None:
            out["decay_start"], out["decay_end"] = self.plan.decay_start, self.plan.decay_end
        if self.plateau is not None:
            p = self.plateau
            best = p.best if math.isfinite(p.best) else None  # JSON has no Infinity
            out["plateau"] = {"best": best, "bad_evals": p.bad_evals, "reductions": p.reductions}
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.plan is not None:
            self.plan.decay_start = state.get("decay_start")
            self.plan.decay_end = state.get("decay_end")
        if self.plateau is not None and "plateau" in state:
            s = state["plateau"]
            self.plateau.best = math.inf if s["best"] is None else float(s["best"])
            self.plateau.bad_evals, self.plateau.reductions = s["bad_evals"], s["reductions"]
