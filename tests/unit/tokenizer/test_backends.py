"""Unigram / WordPiece (HF tokenizers) and SentencePiece BPE / Unigram: round trips on
English and Chinese, specials at ids 0..3, save/load, foreign files, vocabulary errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from llmtrain.errors import ConfigError, DataError
from llmtrain.tokenizer import SentencePieceTokenizer, Tokenizer, load_tokenizer, train_tokenizer
from llmtrain.tokenizer.hf_models import WORDPIECE_MAX_WORD

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
KINDS = ("unigram", "wordpiece", "sentencepiece-bpe", "sentencepiece-unigram")
EN = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "it",
    "barked",
    "twice",
    "then",
    "slept",
    "model",
    "reads",
    "text",
]
ZH = "自然语言处理是人工智能的一个重要方向大模型在海量文本上预训练"


def _corpus(n: int = 120) -> list[str]:
    rng = random.Random(0)
    docs = []
    for i in range(n):
        en = " ".join(rng.choice(EN) for _ in range(12)).capitalize() + ".\n"
        start = rng.randrange(len(ZH) - 8)
        zh = ZH[start:] + "。" + ZH[: start + 4] + "。\n"
        docs.append(
            en
            + zh
            + (
                "Mixed 中英文 with emoji 🙂\tand  spaces.\n"
                if i % 3
                else "def f(x):\n    return x * 2  # code\n"
            )
        )
    return docs


CORPUS = _corpus()
SAMPLES = [
    "Hello, world! The dog barked.",
    "你好，世界。今天天气很好，语言模型在学习。",
    "emoji 🚀👍🏽 and ZWJ 👩‍💻 (unseen)",
    "  leading spaces\n\nand\ttabs  \n end ",
    "未登录字：龘靐齉",
    "## hash ## and \ue000 private use",
    "",
]


@pytest.fixture(scope="module", params=KINDS)
def tok(request) -> Tokenizer:
    return train_tokenizer(request.param, CORPUS, 600)


@pytest.mark.parametrize("text", SAMPLES)
def test_round_trip_english_chinese_anything(tok, text):
    assert tok.decode(tok.encode(text)) == text


def test_specials_and_protocol(tok):
    assert isinstance(tok, Tokenizer)
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    assert tok.vocab_size <= 600
    assert tok.encode_batch(SAMPLES) == [tok.encode(s) for s in SAMPLES]
    assert tok.unk_id not in tok.encode("".join(SAMPLES))  # byte-complete: never UNK


def test_learns_subwords_for_both_languages(tok):
    en, zh = "The quick brown fox jumps", "大语言模型在海量文本上预训练"
    assert len(tok.encode(en)) < len(en.encode("utf-8")) / 2
    assert len(tok.encode(zh)) < len(zh.encode("utf-8")) / 2


def test_save_load_same_ids(tok, tmp_path):
    tok.save(tmp_path / "t")
    again = load_tokenizer(tmp_path / "t")
    assert again.kind == tok.kind and again.vocab_size == tok.vocab_size
    assert [again.encode(s) for s in SAMPLES] == [tok.encode(s) for s in SAMPLES]
    meta = json.loads((tmp_path / "t" / "llmtrain_tokenizer.json").read_text())
    assert meta["type"] == tok.kind


def test_sentencepiece_model_types_and_foreign_model(tmp_path):
    bpe = train_tokenizer("sentencepiece-bpe", CORPUS, 500)
    uni = train_tokenizer("sentencepiece", CORPUS, 500)  # the seed's name: SentencePiece's default
    assert (bpe.model_type, uni.model_type) == ("bpe", "unigram")
    (tmp_path / "m.model").write_bytes(bpe.model_proto)  # a bare .model, as other tools ship
    for path in (tmp_path / "m.model", tmp_path):
        loaded = load_tokenizer(path)
        assert isinstance(loaded, SentencePieceTokenizer) and loaded.eos_id == 3
        assert loaded.encode(SAMPLES[1]) == bpe.encode(SAMPLES[1])


def test_foreign_tokenizer_json_kind(tmp_path):
    uni = train_tokenizer("unigram", CORPUS, 400)
    uni.backend.save(str(tmp_path / "tokenizer.json"))
    assert load_tokenizer(tmp_path / "tokenizer.json").kind == "unigram"


def test_wordpiece_overlong_word_is_unk_not_crash():
    wp = train_tokenizer("wordpiece", CORPUS, 600)
    ids = wp.encode("a" * (WORDPIECE_MAX_WORD + 1) + " ok")
    assert ids[0] == wp.unk_id and wp.decode(ids[1:]) == " ok"


@pytest.mark.parametrize(
    ("kind", "size", "needle"),
    [("unigram", 100, "at least 300"), ("wordpiece", 300, "at least 516"),
     ("sentencepiece-bpe", 100, "at least 276"), ("sentencepiece", 300, "raise --vocab-size")],
)  # fmt: skip
def test_vocab_too_small_is_a_clear_error(kind, size, needle):
    with pytest.raises(ConfigError, match=needle):
        train_tokenizer(kind, CORPUS, size)


def test_bad_sentencepiece_file(tmp_path):
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"not a model")
    with pytest.raises(DataError, match="cannot load sentencepiece model"):
        load_tokenizer(bad)


@pytest.mark.corpus
@pytest.mark.skipif(not SHARED.is_dir(), reason=f"real corpora not found at {SHARED}")
@pytest.mark.parametrize("kind", KINDS)
def test_real_chinese_and_english_round_trip(kind):
    zh = [
        json.loads(line)["text"]
        for line in (SHARED / "zh_wiki" / "zh_wiki_contexts.jsonl").open(encoding="utf-8")
    ][:300]
    en = (SHARED / "tinyshakespeare.txt").read_text(encoding="utf-8")[:200_000].split("\n\n")
    tok = train_tokenizer(kind, zh[:250] + en[:-50], 6000)
    for text in zh[250:] + en[-50:]:  # held-out text
        assert tok.decode(tok.encode(text)) == text
    held_zh = "".join(zh[250:])
    assert len(held_zh.encode("utf-8")) / len(tok.encode(held_zh)) > 2.0  # real compression
