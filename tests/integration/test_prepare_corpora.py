"""`prepare` on real public corpora from ../shared/data (skipped where that folder is absent):
Tiny Shakespeare with the char tokenizer (nanoGPT's 65 characters, contiguous 90/10 split)
and Chinese Wikipedia paragraphs with byte-level BPE (round trip and compression)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmtrain.data import open_split, verify_shards
from llmtrain.data.prepare import PrepareConfig, normalise_text, prepare_corpus
from llmtrain.tokenizer import load_tokenizer

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SHAKESPEARE = SHARED / "tinyshakespeare.txt"
ZH_WIKI = SHARED / "zh_wiki" / "zh_wiki_contexts.jsonl"

pytestmark = pytest.mark.corpus


def need(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"{path} is absent (real corpora live in ../shared/data)")


def test_tinyshakespeare_char(tmp_path):
    need(SHAKESPEARE)
    m = prepare_corpus([SHAKESPEARE], tmp_path, PrepareConfig(tokenizer="char"), quiet=True)
    assert m["tokenizer"]["vocab_size"] == 65 + 4 and m["dtype"] == "uint16"
    assert m["split"]["method"] == "contiguous"
    expected = normalise_text(SHAKESPEARE.read_text(encoding="utf-8"))  # trailing spaces go
    train, val = m["splits"]["train"], m["splits"]["val"]
    assert train["tokens"] + val["tokens"] == len(expected) + 2  # every char + one EOS a side
    assert 0.099 < val["tokens"] / (train["tokens"] + val["tokens"]) < 0.101
    verify_shards(tmp_path)
    tok = load_tokenizer(tmp_path / "tokenizer")
    text = "".join(
        tok.decode(np.asarray(open_split(tmp_path, s)[0])[:-1]) for s in ("train", "val")
    )
    assert text == expected


def test_zh_wiki_bpe(tmp_path):
    need(ZH_WIKI)
    cfg = PrepareConfig(tokenizer="bpe", vocab_size=8192)
    m = prepare_corpus([ZH_WIKI], tmp_path, cfg, quiet=True)
    assert m["split"]["method"] == "document" and m["stats"]["documents_read"] == 3104
    assert m["tokenizer"]["vocab_size"] == 8192
    tok = load_tokenizer(tmp_path / "tokenizer")
    sample = (
        "基于《跑跑卡丁车》与《泡泡堂》上所开发的游戏，由韩国Nexon开发与发行。臺灣繁體字也可以。"
    )
    assert tok.decode(tok.encode(sample)) == sample
    # Chinese is 3 UTF-8 bytes a character: BPE must merge well beyond single bytes.
    assert m["stats"]["val_bytes_per_token"] > 2.0
    val = np.concatenate([np.asarray(x) for x in open_split(tmp_path, "val")])
    assert (val == tok.unk_id).sum() == 0
