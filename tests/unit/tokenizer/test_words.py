"""Word boundaries for whole-word masking: every tokenizer kind spells its ids back as the
text's bytes; byte-level pieces inside a character continue its word; jieba cuts Han runs
into words (never across a document separator), deterministically; a missing jieba is a
one-line fix."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from llmtrain.errors import ConfigError
from llmtrain.tokenizer import EOS_ID, TOKENIZER_KINDS, train_tokenizer, words
from llmtrain.tokenizer.words import WordBoundaries, token_bytes, word_start_table

KINDS = tuple(k for k in TOKENIZER_KINDS if k != "sentencepiece")  # (= -unigram)
TEXT = "北京是中华人民共和国的首都。The quick brown fox jumps, 自然语言处理很有趣！"
CORPUS = [
    TEXT * 3,
    "The lazy dog sleeps while the fox runs.\n" * 5,
    "中华人民共和国成立。\n" * 5,
] * 6
SIZE = {"wordpiece": 600}


@pytest.fixture(scope="module", params=KINDS)
def tok(request):
    return train_tokenizer(request.param, CORPUS, vocab_size=SIZE.get(request.param, 400))


def words_of(tok, text: str, segmenter: str | None) -> list[str]:
    """The text cut where `WordBoundaries` says a word starts."""
    pieces, ids = token_bytes(tok), tok.encode(text)
    starts = WordBoundaries(tok, segmenter).starts(np.array([ids]))[0]
    words, cur = [], b""
    for i, s in zip(ids, starts, strict=True):
        if s and cur:
            words.append(cur.decode())
            cur = b""
        cur += pieces[i]
    return [*words, cur.decode()]


def test_token_bytes_spell_the_text(tok):
    pieces = token_bytes(tok)
    assert len(pieces) == tok.vocab_size
    assert b"".join(pieces[i] for i in tok.encode(TEXT)).decode() == TEXT
    assert pieces[EOS_ID] == b""


def test_tokenizer_rule_makes_english_words_and_han_tokens(tok):
    words = words_of(tok, TEXT, None)
    assert " quick" in words and " brown" in words
    han = [w for w in words if w and "\u4e00" <= w[0] <= "\u9fff"]
    # without a segmenter: a Han character (byte: its 3 bytes) or a learned Han piece
    assert all(len(w) == 1 or len(tok.encode(w)) == 1 for w in han)


def test_byte_pieces_inside_a_character_continue_it():
    tok = train_tokenizer("byte", [], vocab_size=0)
    table = word_start_table(tok)
    ids = tok.encode("中")  # 3 bytes: a lead byte, then two continuation bytes
    assert table[ids].tolist() == [True, False, False]


@pytest.mark.parametrize("kind", ["char", "byte"])
def test_jieba_cuts_han_runs_into_words(kind):
    pytest.importorskip("jieba")
    tok = train_tokenizer(kind, CORPUS, vocab_size=0)
    words = words_of(tok, TEXT, "jieba")
    assert words[:5] == ["北京", "是", "中华人民共和国", "的", "首都"]
    assert " quick" in words  # English keeps the tokenizer's rule


def test_jieba_word_starts_on_subword_tokens(tok):
    """A token starts a word iff it begins at a jieba word (inside a Han run); a token
    spanning two jieba words joins them (units never split a token)."""
    jieba = pytest.importorskip("jieba")
    run = TEXT[: TEXT.index("。")]
    ends, at = set(), 0
    for w in jieba.Tokenizer().cut(run):
        ends.add(at)
        at += len(w.encode())
    pieces, ids = token_bytes(tok), tok.encode(run)
    offsets = np.cumsum([0] + [len(pieces[i]) for i in ids])[:-1]
    starts = WordBoundaries(tok, "jieba").starts(np.array([ids]))[0]
    assert starts.tolist() == [int(o) in ends for o in offsets]


def test_jieba_words_never_span_a_document_separator():
    pytest.importorskip("jieba")
    tok = train_tokenizer("char", CORPUS, vocab_size=0)
    a, b = tok.encode("北京"), tok.encode("京是")  # "京京" would not cut as a word anyway
    ids = np.array([a[:1] + [EOS_ID] + tok.encode("京是中华人民共和国")])
    starts = WordBoundaries(tok, "jieba").starts(ids)[0]
    assert starts[0] and starts[1] and starts[2]  # "北" | EOS | "京" starts its own word
    assert len(a) == len(b) == 2


def test_segmentation_is_a_pure_function_of_the_ids():
    pytest.importorskip("jieba")
    tok = train_tokenizer("char", CORPUS, vocab_size=0)
    x = np.array([tok.encode(TEXT)[i : i + 16] for i in range(0, 32, 4)])  # cut anywhere
    one, two = WordBoundaries(tok, "jieba"), WordBoundaries(tok, "jieba")
    assert np.array_equal(one.starts(x), two.starts(x))
    assert np.array_equal(one.starts(x), one.starts(x))


def test_missing_jieba_names_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "jieba", None)  # import jieba -> ImportError
    words._jieba_cut.cache_clear()  # (a loaded jieba is kept per process)
    tok = train_tokenizer("byte", [], vocab_size=0)
    with pytest.raises(ConfigError, match=r"pip install 'llmtrain\[zh\]'"):
        WordBoundaries(tok, "jieba")
    with pytest.raises(ConfigError, match="segmenter 'ltp' is not known"):
        WordBoundaries(tok, "ltp")
