"""Tokenizer backends: round trips (English, Chinese, emoji, whitespace), special ids,
save/load equality, HF tokenizer.json wrapping, vectorised char encoding, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmtrain.errors import ConfigError, DataError
from llmtrain.tokenizer import (
    EOS,
    META_FILE,
    SPECIAL_TOKENS,
    BPETokenizer,
    ByteTokenizer,
    CharTokenizer,
    Tokenizer,
    load_tokenizer,
    tokenizer_sha256,
    train_tokenizer,
)
from llmtrain.tokenizer.train import cap_bytes

CORPUS = [
    "The quick brown fox jumps over the lazy dog.\nIt barked twice.\n",
    "自然语言处理是人工智能的一个重要方向。大语言模型在海量文本上预训练。\n",
    "Mixed 中英文 text with emoji 🙂🚀 and tabs\tand\r\nCRLF.",
    "def f(x):\n    return x * 2  # code too\n",
] * 20
SAMPLES = [
    "Hello, world!",
    "你好，世界。今天天气很好。",
    "emoji 🙂🚀👍🏽 and ZWJ 👩‍💻",
    "lines\n\nand\ttabs  \n end",
    "未登录字：龘靐齉",  # characters absent from the training text
    "",
]


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    return train_tokenizer("bpe", CORPUS, 400)


@pytest.fixture(scope="module")
def char() -> CharTokenizer:
    return train_tokenizer("char", CORPUS, 0)


@pytest.mark.parametrize("text", SAMPLES)
def test_bpe_and_byte_round_trip_anything(bpe, text):
    for tok in (bpe, ByteTokenizer()):
        assert tok.decode(tok.encode(text)) == text


def test_special_ids_fixed(bpe, char):
    for tok in (bpe, char, ByteTokenizer()):
        assert isinstance(tok, Tokenizer)
        assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    assert [bpe.backend.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3]
    assert bpe.encode(EOS) == [3]  # specials are atomic, never split


def test_bpe_learns_chinese_merges(bpe):
    text = "大语言模型在海量文本上预训练。"
    assert len(bpe.encode(text)) < len(text.encode("utf-8")) / 2


def test_encode_batch_matches_encode(bpe, char):
    for tok in (bpe, char, ByteTokenizer()):
        assert tok.encode_batch(SAMPLES) == [tok.encode(s) for s in SAMPLES]


def test_char_round_trip_seen_and_unk(char):
    seen = "自然语言 quick\tfox\n🙂"
    assert char.decode(char.encode(seen)) == seen
    ids = char.encode("龘x")
    assert ids[0] == char.unk_id and char.decode(ids) == "\ufffdx"


def test_char_vocab_sorted_after_specials(char):
    distinct = sorted(set("".join(CORPUS)))
    assert char.chars == distinct and char.vocab_size == 4 + len(distinct)
    assert char.encode(distinct[0]) == [4] and char.encode(distinct[-1]) == [3 + len(distinct)]


def test_char_vectorised_encode_matches_loop(char):
    rng = np.random.default_rng(0)
    alphabet = char.chars + ["龘", "Ω"]
    text = "".join(rng.choice(alphabet, 5000))
    index = {c: i + 4 for i, c in enumerate(char.chars)}
    assert char.encode(text) == [index.get(c, 1) for c in text]


def test_byte_vocab_and_ids():
    tok = ByteTokenizer()
    assert tok.vocab_size == 260
    assert tok.encode("A中") == [65 + 4, 0xE4 + 4, 0xB8 + 4, 0xAD + 4]
    with pytest.raises(DataError, match="out of range"):
        tok.decode([300])


@pytest.mark.parametrize("bad", [[10_000], [-1]])
def test_char_and_byte_check_ids_alike(char, bad):
    for tok in (char, ByteTokenizer()):
        with pytest.raises(DataError, match=f"out of range for the {tok.kind} vocabulary"):
            tok.decode([5, *bad])


@pytest.mark.parametrize("kind", ["bpe", "char", "byte"])
def test_save_load_equality(tmp_path, bpe, char, kind):
    tok = {"bpe": bpe, "char": char, "byte": ByteTokenizer()}[kind]
    tok.save(tmp_path)
    meta = json.loads((tmp_path / META_FILE).read_text(encoding="utf-8"))
    assert meta["type"] == kind and meta["vocab_size"] == tok.vocab_size
    loaded = load_tokenizer(tmp_path)
    assert loaded.kind == kind and loaded.vocab_size == tok.vocab_size
    assert loaded.encode_batch(SAMPLES) == tok.encode_batch(SAMPLES)
    assert tokenizer_sha256(tmp_path) == tokenizer_sha256(tmp_path)


def test_sha256_changes_with_content(tmp_path, char):
    char.save(tmp_path / "a")
    CharTokenizer(["x", "y"]).save(tmp_path / "b")
    assert tokenizer_sha256(tmp_path / "a") != tokenizer_sha256(tmp_path / "b")


def test_load_plain_hf_tokenizer_json(tmp_path, bpe):
    bpe.backend.save(str(tmp_path / "tokenizer.json"))
    for path in (tmp_path, tmp_path / "tokenizer.json"):
        tok = load_tokenizer(path)
        assert tok.kind == "bpe" and tok.eos_id == 3 and tok.pad_id == 0
        assert tok.encode("你好 world") == bpe.encode("你好 world")


def test_foreign_tokenizer_without_specials_maps_to_eos(tmp_path):
    from tokenizers import Tokenizer as HF
    from tokenizers import models, pre_tokenizers

    hf = HF(models.WordLevel({"a": 0, "b": 1, "</s>": 2}, unk_token="a"))
    hf.pre_tokenizer = pre_tokenizers.Whitespace()
    hf.save(str(tmp_path / "tokenizer.json"))
    tok = load_tokenizer(tmp_path / "tokenizer.json")
    assert (tok.eos_id, tok.pad_id, tok.bos_id) == (2, 2, 2)


def test_bpe_vocab_size_validated():
    with pytest.raises(ConfigError, match="at least 260"):
        train_tokenizer("bpe", CORPUS, 100)


def test_unknown_kind_and_missing_path(tmp_path):
    with pytest.raises(ConfigError, match="bpe, unigram, wordpiece"):
        train_tokenizer("tiktoken", CORPUS, 1000)
    with pytest.raises(DataError, match="not found"):
        load_tokenizer(tmp_path / "nope")
    with pytest.raises(DataError, match="no tokenizer in"):
        load_tokenizer(tmp_path)


def test_cap_bytes_bounds_training_text():
    texts = ["ab" * 10, "中文" * 10, "zz" * 10]
    capped = list(cap_bytes(iter(texts), 30))
    assert sum(len(t.encode()) for t in capped) <= 30
    assert capped[0] == texts[0] and capped[1] == "中文中"  # 10 bytes left: 3 whole characters
    assert list(cap_bytes(texts, None)) == texts
