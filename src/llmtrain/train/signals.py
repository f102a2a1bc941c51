"""Graceful stops: `StopRequest` turns SIGTERM / SIGUSR1 (preemption notices from SLURM,
Kubernetes, spot instances), SIGINT (Ctrl-C) and a `train.max_time_sec` deadline into a flag
the loop reads after each optimizer step. The step in flight finishes, a checkpoint is
written, and the process exits with a documented code; `llmtrain train --resume` continues
exactly there. A second Ctrl-C aborts at once (KeyboardInterrupt: exit 130, no checkpoint).

    exit 0    finished (max_steps, or the time budget is spent: a deadline is a normal end)
    exit 75   stopped by a signal (EX_TEMPFAIL: "try again"; requeue and --resume)

Under torch.distributed the ranks agree (a one-float all-reduce per step), so every rank
stops after the same step even if only one received the signal.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

import torch

from llmtrain.distributed.process_group import any_rank

EXIT_PREEMPTED = 75
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


class StopRequest:
    def __init__(self, max_time_sec: float | None = None, device: torch.device | None = None):
        self.max_time_sec, self.device = max_time_sec, device
        self.signal_name: str | None = None  # set by the handler, at any moment
        self.by_signal = False  # the ranks agreed to stop for a signal (read by the loop)
        self._previous: dict[int, object] = {}

    def install(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and self.signal_name is not None:
            raise KeyboardInterrupt  # the second Ctrl-C: abort now
        self.signal_name = signal.Signals(signum).name
        if signum == signal.SIGINT:
            print(
                "\nCtrl-C: finishing this step and writing a checkpoint (Ctrl-C again aborts)",
                file=sys.stderr,
                flush=True,
            )

    def reason(self, elapsed_sec: float) -> str | None:
        """Why to stop after this step: 'SIGTERM', 'SIGUSR1', 'deadline', or None.

        Decided on the all-reduced flag alone: a signal whose handler runs during or after
        the all-reduce waits for the next step's, or this rank would stop while the others
        step on into a collective it never joins (a hang until the launcher kills both)."""
        local = self.signal_name is not None
        if any_rank(local, self.device):
            if self.signal_name is None:
                self.signal_name = "signal on another rank"
            self.by_signal = True
            return self.signal_name
        if self.max_time_sec is not None and any_rank(
            elapsed_sec >= self.max_time_sec, self.device
        ):
            return "deadline"
        return None

    @property
    def exit_code(self) -> int:
        """75 when the run stopped for a signal; 0 when it ended (a signal that came after
        the last step's decision changed nothing)."""
        return EXIT_PREEMPTED if self.by_signal else 0
