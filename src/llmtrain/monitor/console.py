"""Console output for training: a rich progress bar with loss, tokens/s and ETA, plus plain
lines for evals and checkpoints (printed above the bar so they stay in the scroll-back)."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class TrainConsole:
    def __init__(
        self, total_steps: int, start_step: int = 0, enabled: bool = True, rank0: bool = True
    ):
        """`enabled=False` drops the bar but keeps eval/checkpoint lines; other ranks print
        nothing at all (`rank0=False`), so torchrun logs show each line once."""
        self.console = Console(stderr=True, highlight=False)
        self.rank0 = rank0
        self.enabled = enabled and rank0
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not enabled,
            transient=False,
        )
        self.task = self.progress.add_task(
            "train", total=total_steps, completed=start_step, info=""
        )
        self.total, self._first, self._estimated = total_steps, None, False

    def __enter__(self) -> TrainConsole:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def step(self, step: int) -> None:
        """After every optimizer step: move the bar (log lines may be many steps apart),
        and once the first steps are measured, say how long a long run will take."""
        self.progress.update(self.task, completed=step)
        now = time.perf_counter()
        if self._first is None:  # the first step pays for warm-up: measure from its end
            self._first = (step, now)
            return
        if not self._estimated:
            line = estimate_line(step - self._first[0], now - self._first[1], self.total - step)
            if line is not None:
                self._estimated = True
                self.print(line)

    def update(self, step: int, record: dict[str, Any]) -> None:
        info = f"loss {record['loss']:.4f} | {record['tokens_per_sec']:,.0f} tok/s"
        self.progress.update(self.task, completed=step, info=info)
        if not self.console.is_terminal and self.enabled:
            # No live bar in logs/CI: print the line instead so progress is still visible.
            self.print(f"step {step}: {info} | lr {record['lr']:.2e}")

    def print(self, text: str) -> None:
        if not self.rank0:
            return
        if self.enabled:
            self.progress.console.print(text)
        else:
            print(text, file=sys.stderr)


MEASURE_STEPS = 3  # steps after the first that time the estimate
MEASURE_SEC = 30.0  # or this long, whichever comes first
LONG_RUN_SEC = 600.0  # runs projected to take longer get the estimate printed


def estimate_line(steps: int, seconds: float, remaining: int) -> str | None:
    """ "estimated time: ..." once `steps` steps took `seconds` (enough to measure) and the
    `remaining` steps would take more than LONG_RUN_SEC; else None."""
    if steps <= 0 or (steps < MEASURE_STEPS and seconds < MEASURE_SEC):
        return None
    per_step = seconds / steps
    left = per_step * remaining
    if left <= LONG_RUN_SEC:
        return None
    return (
        f"estimated time: {remaining:,} more steps at {per_step:.3g} s/step = "
        f"{_duration(left)} (measured over {steps} steps); to stop sooner, set --max-time "
        "or fewer train.max_steps"
    )


def _duration(sec: float) -> str:
    if sec >= 86400:
        return f"{sec / 86400:.1f} days"
    if sec >= 3600:
        return f"{sec / 3600:.1f} h"
    return f"{sec / 60:.0f} min"
