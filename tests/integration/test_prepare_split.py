"""The train/val split end to end when documents are few and large: a text file the reader
cuts into pieces is split like one document, and a forced val document never takes far
more than `val_fraction` of the text (pieces made small by shrinking the reader's limit)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from llmtrain.data import open_split
from llmtrain.data.prepare import PrepareConfig, prepare_corpus, readers
from llmtrain.tokenizer import load_tokenizer


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
