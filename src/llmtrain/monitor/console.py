"""Console output for training: a rich progress bar with loss, tokens/s and ETA, plus plain
lines for evals and checkpoints (printed above the bar so they stay in the scroll-back)."""

from __future__ import annotations

import sys
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

    def __enter__(self) -> TrainConsole:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

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
