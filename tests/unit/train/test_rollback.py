"""Rollback pieces: the data skips shift the sample stream from their step on; a token span
maps to the documents it overlaps (shard .idx.npy offsets, ids from documents.jsonl); the
last good checkpoint is the latest at or before the first bad step; a window is recorded once."""

from __future__ import annotations

import json

import numpy as np

from llmtrain.train.curriculum import DataSkips
from llmtrain.train.rollback import (
    DocumentIndex,
    append_record,
    drop_checkpoints_after,
    last_good_checkpoint,
)


def test_skips_shift_the_stream_from_their_step_on():
    s = DataSkips([(8, 32)])
    assert [s.shift(k) for k in (0, 7, 8, 20)] == [0, 0, 32, 32]
    s.add(8, 16)
    s.add(12, 4)
    assert [s.shift(k) for k in (7, 8, 12)] == [0, 48, 52]
    assert DataSkips(json.loads(json.dumps(s.state_dict()))).windows == s.windows


def test_token_spans_map_to_documents_and_their_input_ids(tmp_path):
    # two shards: docs at offsets [0, 5, 9] (12 tokens) and [0, 4] (10 tokens)
    (tmp_path / "train").mkdir()
    np.save(tmp_path / "train/a.idx.npy", np.array([0, 5, 9], dtype=np.uint64))
    np.save(tmp_path / "train/b.idx.npy", np.array([0, 4], dtype=np.uint64))
    manifest = {"splits": {"train": {"shards": [
        {"path": "train/a.bin", "index": "train/a.idx.npy"},
        {"path": "train/b.bin", "index": "train/b.idx.npy"}]}}}  # fmt: skip
    index = DocumentIndex(tmp_path, manifest)
    assert list(index.documents(0, 0, 5)) == [0]
    assert list(index.documents(0, 4, 10)) == [0, 1, 2]
    assert list(index.documents(1, 3, 5)) == [3, 4]
    assert index.describe([4, 3, 4]) == [
        {"train_doc": 3, "shard": "train/b.bin", "doc": 0},
        {"train_doc": 4, "shard": "train/b.bin", "doc": 1},
    ]
    lines = [{"id": f"f.jsonl:{i}", "source": "f.jsonl", "split": s}
             for i, s in enumerate(["train", "val", "train", "train", "val", "train", "train"])]  # fmt: skip
    (tmp_path / "documents.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert [d["id"] for d in index.describe([0, 3, 4])] == ["f.jsonl:0", "f.jsonl:5", "f.jsonl:6"]


def test_last_good_checkpoint_and_the_abandoned_branch(tmp_path):
    for step in (4, 8, 12):
        (tmp_path / f"step_{step:06d}").mkdir()
    assert last_good_checkpoint(tmp_path, 3) is None
    assert last_good_checkpoint(tmp_path, 8).name == "step_000008"
    assert last_good_checkpoint(tmp_path, 11).name == "step_000008"
    assert drop_checkpoints_after(tmp_path, 8) == ["step_000012"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_000004", "step_000008"]


def test_a_window_is_recorded_once(tmp_path):
    rec = {"to_step": 8, "sample_start": 64, "sample_end": 96, "documents": []}
    append_record(tmp_path, rec)
    append_record(tmp_path, {**rec, "at_step": 99})
    append_record(tmp_path, {**rec, "sample_end": 100})
    assert len((tmp_path / "bad_windows.jsonl").read_text().splitlines()) == 2
