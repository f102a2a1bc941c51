"""`progress(total, desc, unit)`: a rich progress bar (rate and ETA) used as a context manager.

It draws on stderr only when stderr is a terminal and `disable` is false (e.g. `--quiet`);
elsewhere (CI, pipes, tests) it stays silent but keeps counting, so callers never branch on it. Byte units get binary prefixes.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


def _human(value: float, unit: str) -> str:
    """1536, "B" -> "1.5 KiB"; 12345, "tok" -> "12.3k tok"."""
    binary = unit == "B"
    base, prefixes = (
        (1024.0, ("", "Ki", "Mi", "Gi", "Ti")) if binary else (1000.0, ("", "k", "M", "G"))
    )
    i = 0
    while abs(value) >= base and i < len(prefixes) - 1:
        value /= base
        i += 1
    return f"{value:.1f} {prefixes[i]}B" if binary else f"{value:.1f}{prefixes[i]} {unit}"


class _RateColumn(ProgressColumn):
    """Items per second in the bar's own unit (rich's TransferSpeedColumn only knows bytes)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(
            "" if speed is None else f"{_human(speed, self.unit)}/s", style="progress.data.speed"
        )


class _CountColumn(ProgressColumn):
    """Completed (and total, when known) in human units."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        done = _human(task.completed, self.unit)
        if task.total is None:
            return Text(done, style="progress.download")
        return Text(f"{done} / {_human(task.total, self.unit)}", style="progress.download")


class ProgressBar:
    """One task on a rich `Progress`; `advance(n)` moves it, `total` may be set later."""

    def __init__(self, total: float | None, desc: str, unit: str, disable: bool = False) -> None:
        console = Console(stderr=True)
        count = MofNCompleteColumn() if unit == "it" else _CountColumn(unit)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=24),
            TaskProgressColumn(),
            count,
            _RateColumn(unit),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=disable or not console.is_terminal,
            transient=False,
        )
        self._task = self._progress.add_task(desc, total=total)
        self.completed = 0.0

    def advance(self, n: float = 1) -> None:
        self.completed += n
        self._progress.advance(self._task, n)

    def set_total(self, total: float | None) -> None:
        self._progress.update(self._task, total=total)

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()


def progress(
    total: float | None = None, desc: str = "", unit: str = "it", disable: bool = False
) -> ProgressBar:
    """A progress bar context: `with progress(total=n, desc="read", unit="B") as bar: bar.advance(k)`."""
    return ProgressBar(total, desc, unit, disable)
