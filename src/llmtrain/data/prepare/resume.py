"""Checkpoints of `prepare` inside one part: what `--resume` goes on from after a crash.

`.prepare_checkpoint.json` in DATA_DIR holds the phase reached ("clean": pass 1 under way,
with the reader's position, every step's counts and the byte sizes of the spool, kept text
and near-dedup files; "cleaned": pass 1 and near-dedup done; "tokenizer": the tokenizer is
saved; "pack": pass 2 under way, with the spool position, the counts and each split's shard
writer state, written after the shard bytes it describes are fsynced; "packed": the shards
are complete) and a fingerprint of the inputs and settings. A checkpoint of another
fingerprint (or unreadable) is ignored, so a changed corpus or config starts afresh.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from llmtrain import __version__
from llmtrain.data.prepare.config import PrepareConfig
from llmtrain.data.prepare.readers import InputPlan
from llmtrain.utils.io import atomic_write_json

CHECKPOINT_FILE = ".prepare_checkpoint.json"
# settings that do not change the output: a resume may differ in them
_FREE_SETTINGS = ("workers", "overwrite", "resume", "checkpoint_bytes")


def fingerprint(plan: InputPlan, cfg: PrepareConfig) -> str:
    """sha256 over the settings that shape the output and every input's path, size, mtime."""
    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _FREE_SETTINGS}
    files = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in plan.files]
    blob = json.dumps([__version__, settings, plan.builtins, files], sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def load_checkpoint(out: Path, expected: str) -> dict[str, Any] | None:
    """The checkpoint in `out` when it belongs to this run (same fingerprint), else None."""
    path = out / CHECKPOINT_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if state.get("fingerprint") == expected else None


def save_checkpoint(out: Path, print_: str, phase: str, **state: Any) -> None:
    """Atomically record `phase` (and its state) for fingerprint `print_`."""
    atomic_write_json(out / CHECKPOINT_FILE, {"fingerprint": print_, "phase": phase, **state})
