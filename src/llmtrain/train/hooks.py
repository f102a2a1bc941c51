"""What a caller may plug into `Trainer` without touching the loop: `on_eval(record)` is called
after each in-training evaluation with its logged record (`step`, `val_loss`, `val_bpb`, ...).
Raising `StopRun` there ends the run at once: no further step and no checkpoint; `fit()`
releases the run lock, closes the metrics and re-raises it to the caller (a sweep's pruner
uses this to stop an unpromising trial)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

EvalHook = Callable[[dict[str, Any]], None]


class StopRun(Exception):  # noqa: N818  (a request, not an error: the run ended on purpose)
    """Raised by an `on_eval` hook to end the run after this evaluation."""
