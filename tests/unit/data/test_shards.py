"""The shard format: dtype choice, the writer (EOS, offsets, roll-over, checksums), manifest
validation, memmaps and checksum verification."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmtrain.data.prepare.pack import encode_documents, encoding_pieces
from llmtrain.data.shards import ShardWriter, open_split, read_manifest, shard_dtype, verify_shards
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
