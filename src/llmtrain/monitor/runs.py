"""Reading a run directory for the dashboard, the report and the diagnosis: its
metrics.jsonl (split into train records, eval records and events), config.json, the data
manifest, and the checkpoints on disk. `MetricsTail` follows a metrics.jsonl as it grows."""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmtrain.errors import LLMTrainError


def _num(v: Any) -> Any:
    """The logger writes non-finite floats as strings ("nan", "inf"): turn them back."""
    if isinstance(v, str) and v.lower() in ("nan", "inf", "-inf", "infinity", "-infinity"):
        return float(v)
    return v


def parse_line(line: str) -> dict[str, Any] | None:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        return None  # a torn line being written right now
    return {k: _num(v) for k, v in rec.items()} if isinstance(rec, dict) else None


@dataclass
class Checkpoint:
    step: int
    path: Path
    mtime: float


@dataclass
class RunData:
    run_dir: Path
    name: str
    train: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None
    checkpoints: list[Checkpoint] = field(default_factory=list)
    checkpoint_dir: Path | None = None

    def add(self, rec: dict[str, Any]) -> None:
        if "event" in rec:
            self.events.append(rec)
        elif "val_loss" in rec:
            self.evals.append(rec)
        elif "loss" in rec:
            self.train.append(rec)

    @property
    def max_steps(self) -> int | None:
        return self.config.get("train", {}).get("max_steps")

    @property
    def step(self) -> int:
        last = [r[-1]["step"] for r in (self.train, self.evals) if r]
        return max(last, default=0)

    def eta_sec(self, window: int = 20) -> float | None:
        """Seconds to max_steps at the pace of the last `window` train records."""
        if not self.max_steps or len(self.train) < 2:
            return None
        recent = self.train[-window:]
        d_step = recent[-1]["step"] - recent[0]["step"]
        d_time = recent[-1]["elapsed_sec"] - recent[0]["elapsed_sec"]
        if d_step <= 0 or d_time <= 0:
            return None
        return max(0, self.max_steps - self.step) * d_time / d_step

    def series(self, key: str) -> list[tuple[int, float]]:
        """(step, value) of one metric from train or eval records, in order."""
        recs = self.evals if key.startswith("val_") else self.train
        return [(r["step"], float(r[key])) for r in recs if _is_number(r.get(key))]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def finite(v: Any) -> bool:
    return _is_number(v) and math.isfinite(v)


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories named by `paths`: a run dir, its metrics.jsonl, or a folder of runs."""
    runs: list[Path] = []
    for p in map(Path, paths):
        if p.is_file() and p.name.endswith(".jsonl"):
            runs.append(p.parent)
        elif (p / "metrics.jsonl").is_file() or (p / "config.json").is_file():
            runs.append(p)
        elif p.is_dir() and (kids := sorted(c.parent for c in p.glob("*/metrics.jsonl"))):
            runs.extend(kids)
        else:
            raise LLMTrainError(
                f"{p} is not a run directory (no metrics.jsonl or config.json in it, nor in "
                "its sub-folders); pass the --out folder of `llmtrain train`"
            )
    return runs


def list_checkpoints(ckpt_dir: Path) -> list[Checkpoint]:
    out = []
    for d in sorted(ckpt_dir.glob("step_*")) if ckpt_dir.is_dir() else []:
        if d.is_dir() and (d / "state.json").is_file() and d.name[5:].isdigit():
            out.append(Checkpoint(int(d.name[5:]), d, (d / "state.json").stat().st_mtime))
    return out


def load_run(run_dir: str | Path, checkpoint_dir: str | Path | None = None) -> RunData:
    run_dir = Path(run_dir)
    run = RunData(run_dir=run_dir, name=run_dir.resolve().name)
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        for line in metrics.read_text(encoding="utf-8").splitlines():
            if (rec := parse_line(line)) is not None:
                run.add(rec)
    refresh_meta(run, checkpoint_dir)
    return run


def refresh_meta(run: RunData, checkpoint_dir: str | Path | None = None) -> None:
    """(Re)read config, manifest and the checkpoint list (they change while a run goes)."""
    cfg_path = run.run_dir / "config.json"
    if cfg_path.is_file():
        with contextlib.suppress(json.JSONDecodeError):  # torn mid-write: keep the old one
            run.config = json.loads(cfg_path.read_text(encoding="utf-8"))
    data_path = run.config.get("data", {}).get("path")
    if run.manifest is None and data_path and (Path(data_path) / "manifest.json").is_file():
        run.manifest = json.loads((Path(data_path) / "manifest.json").read_text(encoding="utf-8"))
    if checkpoint_dir is not None:
        run.checkpoint_dir = Path(checkpoint_dir)
    run.checkpoints = list_checkpoints(run.checkpoint_dir or run.run_dir / "checkpoints")


class MetricsTail:
    """Incremental reader of a growing metrics.jsonl: `poll()` returns the new complete
    records; when the file shrinks (a resumed run truncates it), `poll()` starts over and
    `reset` is set so the caller can drop what it had."""

    def __init__(self, path: str | Path):
        self.path, self.offset, self.reset = Path(path), 0, False
        self._partial = b""

    def poll(self) -> list[dict[str, Any]]:
        self.reset = False
        if not self.path.is_file():
            return []
        size = self.path.stat().st_size
        if size < self.offset:
            self.offset, self._partial, self.reset = 0, b"", True
        if size == self.offset:
            return []
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read(size - self.offset)
        self.offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an incomplete last line waits for its newline
        out = []
        for line in lines:
            if (rec := parse_line(line.decode("utf-8", errors="replace"))) is not None:
                out.append(rec)
        return out
