"""`RunDirLock`: one writer per run directory. An exclusive `flock` on RUN_DIR/.lock, held for
the life of the training process; the OS drops it when the process dies (even by SIGKILL), so
a crashed run never leaves a stale lock behind. Only rank 0 takes it. `check_run_dir` refuses
a run directory that is not a writable directory (a file, /dev/null, /proc/...) up front."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from llmtrain.errors import ConfigError


class RunDirLock:
    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / ".lock"
        self._fd: int | None = None

    def acquire(self) -> RunDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ConfigError(
                f"run directory {self.path.parent} is in use by another training process "
                f"(pid {holder}); wait for it to finish or choose a different --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunDirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def check_run_dir(out: str | Path) -> None:
    """Raise ConfigError unless `out` is (or can be created as) a directory we can write."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory; choose a new run directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ConfigError(
            f"--out {out} is not a writable directory ({e.strerror or e}); choose another path"
        ) from None
