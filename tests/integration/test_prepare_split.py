"""The train/val split end to end when documents are few and large: a text file the reader
cuts into pieces is split like one document, and a forced val document never takes far
more than `val_fraction` of the text (pieces made small by shrinking the reader's limit)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from llmtrain.data import open_split
from llmtrain.data.prepare import PrepareConfig, prepare_corpus, readers
from llmtrain.data.prepare.resume import CHECKPOINT_FILE
from llmtrain.tokenizer import load_tokenizer

from .test_prepare_resume import _outputs


def _text(n: int, tag: str) -> str:
    return "".join(f"{tag} line {i} 第{i}行 of the book.\n" + ("\n" if i % 7 == 6 else "")
                   for i in range(n))  # fmt: skip


def _split_text(out) -> tuple[str, str]:
    tok = load_tokenizer(out / "tokenizer")
    ids = {s: np.concatenate([np.asarray(m) for m in open_split(out, s)]) for s in ("train", "val")}
    return tuple(tok.decode(ids[s][ids[s] != tok.eos_id].tolist()) for s in ("train", "val"))


def test_a_file_cut_into_pieces_is_split_like_one_document(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "MAX_DOCUMENT_BYTES", 4096)
    book = tmp_path / "book.txt"
    book.write_text(_text(600, "book"), encoding="utf-8")  # ~26 KiB: 7 pieces
    cfg = PrepareConfig(tokenizer="char", workers=1, keep_text=True)
    m = prepare_corpus([book], tmp_path / "d", cfg, quiet=True)
    assert m["stats"]["documents_kept"] > 4 and m["split"]["method"] == "contiguous"
    train, val = _split_text(tmp_path / "d")
    text = book.read_text(encoding="utf-8")
    assert train + val == text and 0.09 < len(val) / len(text) < 0.11
    assert val.startswith("book line ") and train.endswith("\n")
    rows = [json.loads(line) for line in (tmp_path / "d" / "documents.jsonl").open()]
    names = ",".join(r["split"] for r in rows) + ","
    assert re.fullmatch(r"(train,)+(train\+val,|val,)(val,)*", names), names
    assert m["splits"]["val"]["documents"] <= 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_few_large_files_put_about_val_fraction_in_val(tmp_path, seed):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("a", "b", "c"):
        (raw / f"{name}.txt").write_text(_text(300, name), encoding="utf-8")
    cfg = PrepareConfig(tokenizer="char", workers=1, seed=seed)
    m = prepare_corpus([raw], tmp_path / "d", cfg, quiet=True)
    train, val = m["splits"]["train"]["bytes"], m["splits"]["val"]["bytes"]
    assert 0 < val <= 2 * 0.1 * (train + val), m["split"]


_KILLED = """
import json, os, sys
from llmtrain.data.prepare import PrepareConfig, pack, prepare_corpus, readers
readers.MAX_DOCUMENT_BYTES = 2048
original, calls = pack.Packer.flush, [0]
def flush(self):
    calls[0] += 1
    if calls[0] > 4:
        os._exit(3)
    original(self)
pack.Packer.flush = flush
prepare_corpus([sys.argv[1]], sys.argv[2], PrepareConfig(**json.loads(sys.argv[3])), quiet=True)
"""


def test_packing_a_file_cut_into_pieces_resumes_to_identical_output(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "MAX_DOCUMENT_BYTES", 2048)
    book = tmp_path / "book.txt"
    book.write_text(_text(600, "book"), encoding="utf-8")  # ~26 KiB: 13 pieces
    settings = {"tokenizer": "char", "workers": 1, "keep_text": True,
                "checkpoint_bytes": 3000, "shard_tokens": 4000}  # fmt: skip
    prepare_corpus([book], tmp_path / "whole", PrepareConfig(**settings), quiet=True)
    out = tmp_path / "out"
    code = subprocess.run([sys.executable, "-c", _KILLED, str(book), str(out),
                           json.dumps(settings)]).returncode  # fmt: skip
    assert code == 3 and json.loads((out / CHECKPOINT_FILE).read_text())["phase"] == "pack"
    prepare_corpus([book], out, PrepareConfig(**settings, resume=True), quiet=True)
    assert _outputs(out) == _outputs(tmp_path / "whole")
    assert _outputs(out)["manifest"]["split"]["method"] == "contiguous"
