"""The shard format: dtype choice, the writer (EOS, offsets, roll-over, checksums, state and
restore after a crash), manifest validation, memmaps and checksum verification."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmtrain.data.prepare.pack import encode_documents, encoding_pieces
from llmtrain.data.shards import (
    ShardStateError,
    ShardWriter,
    open_split,
    read_manifest,
    shard_dtype,
    verify_shards,
)
from llmtrain.errors import DataError
from llmtrain.tokenizer import train_tokenizer
from llmtrain.utils.io import sha256_file


def test_shard_dtype():
    assert shard_dtype(69) == "uint16" and shard_dtype(65536) == "uint16"
    assert shard_dtype(65537) == "uint32" and shard_dtype(200_000) == "uint32"


def test_writer_rolls_over_and_indexes(tmp_path):
    w = ShardWriter(tmp_path, "train", "uint32", shard_tokens=6, eos_id=3)
    for doc in ([70000, 5], [6, 7, 8], [9], []):
        w.add(doc)
    shards = w.close()
    assert [s["documents"] for s in shards] == [2, 2] and [s["tokens"] for s in shards] == [7, 3]
    first = np.fromfile(tmp_path / shards[0]["path"], dtype="<u4")
    assert first.tolist() == [70000, 5, 3, 6, 7, 8, 3]
    assert np.load(tmp_path / shards[0]["index"]).tolist() == [0, 3]
    assert np.load(tmp_path / shards[1]["index"]).dtype == np.uint64
    assert shards[1]["sha256"] == sha256_file(tmp_path / shards[1]["path"])


def test_writer_rejects_ids_beyond_dtype(tmp_path):
    w = ShardWriter(tmp_path, "train", "uint16", shard_tokens=100, eos_id=3)
    with pytest.raises(DataError, match="out of range"):
        w.add([70000])


DOCS = [[5, 6, 7], [8], [9, 10, 11, 12, 13], [], [14, 15], [16] * 9, [17, 18], [19], [20, 21]]


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".partial_")}  # fmt: skip


@pytest.mark.parametrize("cut", [2, 3, 5, 7])
def test_writer_restored_after_a_crash_writes_the_same_bytes(tmp_path, cut):
    """State after `cut` documents, more written (a shard closes past it, bytes sit in the
    open shard and its partial index), then the process dies: a restored writer cuts back
    and ends with the same files and records as one that never stopped."""
    whole = ShardWriter(tmp_path / "whole", "train", "uint16", shard_tokens=8, eos_id=3)
    for doc in DOCS:
        whole.add(doc)
    expected = whole.close()
    out = tmp_path / "crashed"
    w = ShardWriter(out, "train", "uint16", shard_tokens=8, eos_id=3)
    for doc in DOCS[:cut]:
        w.add(doc)
    state = json.loads(json.dumps(w.state()))  # as a checkpoint stores it
    for doc in DOCS[cut:-1]:
        w.add(doc)
    w.state()  # a later state whose checkpoint never landed
    w._flush_open()  # the crash: no close; the files hold more than `state` says
    assert sum(p.stat().st_size for p in (out / "train").glob("*.bin")) > 2 * sum(
        s["tokens"] for s in state["shards"]) + 2 * (state["open"] or {"tokens": 0})["tokens"]  # fmt: skip
    resumed = ShardWriter(out, "train", "uint16", shard_tokens=8, eos_id=3)
    resumed.restore(state)
    kept = {s["path"] for s in state["shards"]} | {s["index"] for s in state["shards"]}
    kept |= {f"train/shard_{len(state['shards']):05d}.bin"} if state["open"] else set()
    assert set(_files(out)) == kept  # what the crash left past `state` is gone
    for doc in DOCS[cut:]:
        resumed.add(doc)
    assert resumed.close() == expected
    assert _files(out) == _files(tmp_path / "whole")


def test_restore_refuses_files_that_differ_from_the_state(tmp_path):
    w = ShardWriter(tmp_path, "train", "uint16", shard_tokens=8, eos_id=3)
    for doc in DOCS[:5]:
        w.add(doc)
    state = w.state()
    assert state["open"]["tokens"] == 4 and len(state["shards"]) == 1
    w._flush_open()
    open_bin = tmp_path / "train/shard_00001.bin"
    data = open_bin.read_bytes()
    open_bin.write_bytes(data[:2] + b"\xff\xff" + data[4:])  # same size, other bytes
    with pytest.raises(ShardStateError, match=r"shard_00001\.bin .*differs"):
        ShardWriter(tmp_path, "train", "uint16", 8, 3).restore(state)
    open_bin.write_bytes(data[:2])
    with pytest.raises(ShardStateError, match="shorter"):
        ShardWriter(tmp_path, "train", "uint16", 8, 3).restore(state)
    (tmp_path / "train/shard_00000.bin").unlink()
    with pytest.raises(ShardStateError, match=r"shard_00000\.bin"):
        ShardWriter(tmp_path, "train", "uint16", 8, 3).restore(state)


def _fake_data_dir(tmp_path):
    w = ShardWriter(tmp_path, "val", "uint16", shard_tokens=100, eos_id=3)
    w.add([4, 5, 6])
    manifest = {
        "format": "llmtrain-shards",
        "format_version": 1,
        "dtype": "uint16",
        "tokenizer": {"type": "byte", "vocab_size": 260},
        "splits": {"val": {"shards": w.close()}},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def test_read_open_verify(tmp_path):
    _fake_data_dir(tmp_path)
    assert read_manifest(tmp_path)["dtype"] == "uint16"
    (mm,) = open_split(tmp_path, "val")
    assert mm.tolist() == [4, 5, 6, 3] and not mm.flags.writeable
    verify_shards(tmp_path)
    with pytest.raises(DataError, match="no split 'train'"):
        open_split(tmp_path, "train")
    (tmp_path / "val/shard_00000.bin").write_bytes(np.array([4, 5, 7, 3], "<u2").tobytes())
    with pytest.raises(DataError, match=r"val shard .*shard_00000\.bin fails its sha256"):
        verify_shards(tmp_path)


def test_read_manifest_errors(tmp_path):
    with pytest.raises(DataError, match="run `llmtrain prepare INPUT... --out"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        read_manifest(tmp_path)
    manifest = _fake_data_dir(tmp_path)
    manifest["format_version"] = 99
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="format_version 99"):
        read_manifest(tmp_path)


def test_pieces_encode_like_the_whole_text():
    text = "".join(f"Line {i}: 中文 text,  spaces \n\n\tindent\nword\n" for i in range(400))
    tok = train_tokenizer("bpe", [text], 300)
    pieces = encoding_pieces(text, max_chars=200)
    assert len(pieces) > 10 and "".join(pieces) == text
    (ids,) = encode_documents(tok, [text])
    assert ids.tolist() == tok.encode(text)
