"""Rollback after persistent loss / grad-norm spikes (the guard's `rollback_due`).

The trainer reloads the last good checkpoint (the latest written at or before the first
skipped step: model, optimizer, RNG, loop state), moves the data stream past the window the
run read since it (`DataSkips`: steps [checkpoint, last skipped], as PaLM did by hand), and
appends a record naming that window to RUN_DIR/bad_windows.jsonl:

    {"rollback": 1, "at_step": 13, "to_step": 8, "checkpoint": ".../step_000008",
     "first_step": 8, "last_step": 12, "sample_start": 64, "sample_end": 104,
     "spikes": [{"step": 11, "reason": "loss_spike", "loss": ..., "grad_norm": ...}, ...],
     "spike_documents": [...], "documents": [...]}

A document is {"train_doc": k, "shard": "train/shard_00000.bin", "doc": i} — the k-th
training document, i-th in its shard (the shard's .idx.npy) — plus the input's "id" ("file",
"file:line" or the record's own `id`) and "source" when the data were prepared with
`--keep-text` (documents.jsonl). `spike_documents` are those of the skipped steps' batches.
Checkpoints after the rollback point belong to the abandoned branch and are removed, so a
resume always continues the branch that was kept; the skips are saved in every checkpoint.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from llmtrain.checkpoint import list_checkpoints
from llmtrain.train.faults import BadStep

BAD_WINDOWS_FILE = "bad_windows.jsonl"
KEPT_TEXT_FILE = "documents.jsonl"  # data/prepare/keep_text.py


def checkpoint_step(ckpt: Path) -> int:
    return int(ckpt.name.split("_")[-1])


def last_good_checkpoint(ckpt_root: Path, first_bad_step: int) -> Path | None:
    """The latest checkpoint written at or before step `first_bad_step` (None if none)."""
    good = [c for c in list_checkpoints(ckpt_root) if checkpoint_step(c) <= first_bad_step]
    return good[-1] if good else None


def drop_checkpoints_after(ckpt_root: Path, step: int) -> list[str]:
    """Remove the abandoned branch's checkpoints (step > `step`); their names."""
    gone = [c for c in list_checkpoints(ckpt_root) if checkpoint_step(c) > step]
    for c in gone:
        shutil.rmtree(c, ignore_errors=True)
    return [c.name for c in gone]


class DocumentIndex:
    """Maps token spans of the train shards to documents (from each shard's .idx.npy), and
    training documents to their input ids when documents.jsonl exists."""

    def __init__(self, data_dir: str | Path, manifest: dict[str, Any]):
        self.data_dir = Path(data_dir)
        shards = manifest["splits"]["train"]["shards"]
        self.paths = [s["path"] for s in shards]
        self.offsets = [np.load(self.data_dir / s["index"]).astype(np.int64) for s in shards]
        self.first = np.cumsum([0, *[len(o) for o in self.offsets]])

    def documents(self, shard: int, start: int, stop: int) -> range:
        """Global train document numbers overlapping tokens [start, stop) of `shard`."""
        off = self.offsets[shard]
        lo = int(np.searchsorted(off, start, side="right")) - 1
        hi = int(np.searchsorted(off, stop - 1, side="right")) - 1
        base = int(self.first[shard])
        return range(base + max(lo, 0), base + hi + 1)

    def describe(self, docs: Iterable[int]) -> list[dict[str, Any]]:
        out = []
        for k in sorted(set(docs)):
            shard = int(np.searchsorted(self.first, k, side="right")) - 1
            out.append(
                {"train_doc": k, "shard": self.paths[shard], "doc": k - int(self.first[shard])}
            )
        ids = self._input_ids({d["train_doc"] for d in out})
        for d in out:
            d.update(ids.get(d["train_doc"], {}))
        return out

    def _input_ids(self, wanted: set[int]) -> dict[int, dict[str, str]]:
        """{train_doc: {"id", "source"}} from documents.jsonl (--keep-text), else {}."""
        path = self.data_dir / KEPT_TEXT_FILE
        if not path.is_file() or not wanted:
            return {}
        found, k = {}, 0
        with path.open(encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                if not str(rec.get("split", "train")).startswith("train"):
                    continue
                if k in wanted:
                    found[k] = {"id": rec.get("id"), "source": rec.get("source")}
                    if len(found) == len(wanted):
                        break
                k += 1
        return found


def documents_of(
    samples: range, span: Callable[[int], tuple[int, int, int]], index: DocumentIndex
) -> list[dict[str, Any]]:
    """The documents whose tokens global samples `samples` read (`span`: the loader's)."""
    docs: set[int] = set()
    for i in samples:
        docs.update(index.documents(*span(i)))
    return index.describe(docs)


def bad_window_record(
    *,
    rollback: int,
    at_step: int,
    checkpoint: Path,
    bad: list[BadStep],
    position: Callable[[int], int],
    span: Callable[[int], tuple[int, int, int]],
    index: DocumentIndex,
) -> dict[str, Any]:
    """The record of the window skipped by rolling back to `checkpoint` (see the docstring);
    `position(step)` is the first global sample of a step, before this window is skipped."""
    to_step, last = checkpoint_step(checkpoint), bad[-1].step
    window = range(position(to_step), position(last + 1))
    spike_samples = [i for b in bad for i in range(position(b.step), position(b.step + 1))]
    return {
        "rollback": rollback,
        "at_step": at_step,
        "to_step": to_step,
        "checkpoint": str(checkpoint),
        "first_step": to_step,
        "last_step": last,
        "sample_start": window.start,
        "sample_end": window.stop,
        "spikes": [
            {"step": b.step, "reason": b.reason, "loss": b.loss, "grad_norm": b.grad_norm}
            for b in bad
        ],
        "spike_documents": index.describe(
            d for i in spike_samples for d in index.documents(*span(i))
        ),
        "documents": documents_of(window, span, index),
    }


def append_record(run_dir: Path, record: dict[str, Any]) -> Path:
    """Append `record` to bad_windows.jsonl unless the same window is already there (a resume
    that replays a rollback writes it once)."""
    path = run_dir / BAD_WINDOWS_FILE
    key = (record["to_step"], record["sample_start"], record["sample_end"])
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if (r.get("to_step"), r.get("sample_start"), r.get("sample_end")) == key:
                return path
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path
