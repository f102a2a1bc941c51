"""Stopping `prepare` cleanly: SIGTERM acts like Ctrl-C (the run stops where it is and keeps
its last checkpoint for --resume), and work in native code that does not look at Python's
signals (the tokenizer trainers) runs in a helper thread so that a signal acts within
`POLL_S` seconds instead of when that code returns."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

POLL_S = 0.2
T = TypeVar("T")


class Stopped(KeyboardInterrupt):
    """SIGTERM (or SIGINT) asked `prepare` to stop; `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block SIGTERM and SIGINT raise `Stopped` in the main thread; the previous
    handlers come back after it (outside the main thread this does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Stopped(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def ignore_in_worker() -> None:
    """For a forked worker: leave SIGINT / SIGTERM to the parent, which stops the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def interruptible(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` in a daemon thread while the main thread waits in short steps,
    so a signal handler (Ctrl-C, SIGTERM) runs within `POLL_S` s; the abandoned thread ends
    with the process. Outside the main thread it just calls `fn`."""
    if threading.current_thread() is not threading.main_thread():
        return fn(*args, **kwargs)
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fn(*args, **kwargs)
        except BaseException as e:  # handed to the caller below
            result["error"] = e

    thread = threading.Thread(target=target, name="llmtrain-native", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(POLL_S)
    if "error" in result:
        raise result["error"]
    return result["value"]
