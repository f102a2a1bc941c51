"""Script-aware text units shared by the quality filters, MinHash and decontamination.

`words(text)`: whitespace-separated tokens for spaced scripts, and one token per character
for unsegmented ones (Han, kana, Thai...), because `str.split()` sees a whole Chinese
paragraph as one word; `words(text, "jieba")` segments Chinese into words with jieba (the
optional `zh` extra) instead; `count_words` and `has_long_word` answer the filters' questions
about a line without listing all its words. `script_of(text)` names the dominant script: "cjk"
when at least 30 % of the letters are CJK characters, else "latin" (every spaced script).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice

import numpy as np

from llmtrain.data.prepare.documents import Document
from llmtrain.errors import ConfigError

# Han (+ extension A, compatibility), kana, Hangul syllables, Thai, Lao, Khmer, Myanmar:
# scripts written without spaces between words (Hangul is spaced, but its syllable blocks
# are closer to CJK characters in length than to words).
CJK_CLASS = (
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"
)
_WORD = re.compile(rf"[{CJK_CLASS}]|[^\s{CJK_CLASS}]+")
_CJK_RUN = re.compile(rf"[{CJK_CLASS}]+")
_LETTER_RUN = re.compile(r"[^\W\d_]+")
# a CJK sentence: up to its 。！？；… and any closing quotes/brackets, or the line's remainder
_CJK_SENTENCE = re.compile(r"[^。！？；…]*[。！？；…]+[”’」』）)\"']*|[^。！？；…]+$")
CJK_SHARE = 0.3
_SAMPLE_CHARS = 4096


SEGMENTERS = ("chars", "jieba")


def _jieba():
    try:
        import jieba
    except ImportError:
        raise ConfigError(
            "zh_words = 'jieba' needs the jieba package, which is not installed; run "
            "`pip install 'llmtrain[zh]'` (or pip install jieba), or use zh_words = 'chars'"
        ) from None
    jieba.setLogLevel(60)  # no "Building prefix dict" chatter on stderr
    return jieba


def words(text: str, segmenter: str = "chars") -> list[str]:
    """Word tokens: runs of non-space characters, with every CJK character its own token
    ("chars"), or jieba's words and punctuation, spaces left out ("jieba")."""
    if segmenter == "jieba":
        return [w for w in _jieba().lcut(text) if not w.isspace()]
    return _WORD.findall(text)


def _iter_words(text: str, segmenter: str) -> Iterator[object]:
    if segmenter == "jieba":  # a generator: jieba cuts one punctuation-free block at a time
        return (w for w in _jieba().cut(text) if not w.isspace())
    return _WORD.finditer(text)


def count_words(text: str, segmenter: str = "chars", limit: int | None = None) -> int:
    """`len(words(text, segmenter))`, or `min(that, limit)` found by segmenting only as far
    as the `limit`-th word."""
    if limit is None:
        return len(words(text, segmenter))
    return sum(1 for _ in islice(_iter_words(text, segmenter), max(limit, 0)))


@lru_cache(maxsize=8)
def _non_cjk_run(longer_than: int) -> re.Pattern[str]:
    return re.compile(rf"[^\s{CJK_CLASS}]{{{longer_than + 1},}}")


def has_long_word(text: str, limit: int, segmenter: str = "chars") -> bool:
    """`any(len(w) > limit for w in words(text, segmenter))`, segmenting only text with a
    whitespace-free run longer than `limit`: no word of either segmenter spans whitespace, and
    in "chars" mode every word longer than one character is a run outside CJK_CLASS."""
    if len(text) <= limit:
        return False
    if segmenter == "chars" and limit >= 1:
        return _non_cjk_run(limit).search(text) is not None
    if max(map(len, text.split()), default=0) <= limit:
        return False
    return max(map(len, words(text, segmenter)), default=0) > limit


def check_segmenter(segmenter: str) -> None:
    """Raise a ConfigError naming the fix when `segmenter` is unknown or not installed."""
    if segmenter not in SEGMENTERS:
        raise ConfigError(
            f"zh_words = {segmenter!r} is not known; choose 'chars' (one word per Chinese "
            "character, no extra package) or 'jieba' (word segmentation, the zh extra)"
        )
    if segmenter == "jieba":
        _jieba()


def sentence_units(line: str) -> list[str]:
    """`line` cut after each CJK sentence end (。！？；…, closing quotes kept with it); the
    pieces, blank ones dropped. A line without those marks is one piece."""
    return [u for u in (m.strip() for m in _CJK_SENTENCE.findall(line)) if u]


def script_of(text: str) -> str:
    """ "cjk" or "latin", from the share of CJK characters among the letters of a sample."""
    sample = text[:_SAMPLE_CHARS]
    cjk = sum(map(len, _CJK_RUN.findall(sample)))  # runs: far fewer matches than characters
    letters = sum(map(len, _LETTER_RUN.findall(sample)))
    return "cjk" if letters and cjk / letters >= CJK_SHARE else "latin"


def ngram_keys(ids: np.ndarray, n: int) -> np.ndarray:
    """One uint64 key per n-gram of consecutive ids (`len(ids) - n + 1` keys).

    A polynomial hash with odd 64-bit multipliers (wrapping arithmetic): two different
    n-grams of the same document collide with probability ~2**-64.
    """
    ids = ids.astype(np.uint64, copy=False)
    count = len(ids) - n + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    keys = ids[:count].copy()
    for k in range(1, n):
        keys *= np.uint64(0x9E3779B97F4A7C15)
        keys += ids[k : k + count]
    return keys


@dataclass
class TokenTable:
    """A document's word tokens as ids into its own small vocabulary (`uniq`)."""

    text: str  # the text it was built from (the cache is stale once doc.text changes)
    uniq: list[str]  # distinct tokens in first-seen order
    ids: np.ndarray  # (n_tokens,) int64 index into uniq
    counts: np.ndarray  # (len(uniq),) occurrences of each distinct token
    uniq_lengths: np.ndarray  # (len(uniq),) characters of each distinct token
    lengths: np.ndarray  # (n_tokens,) characters of each token

    @property
    def n_tokens(self) -> int:
        return len(self.ids)


def token_table(text: str, segmenter: str = "chars") -> TokenTable:
    """Tokenize `text` (see `words`) into a `TokenTable`; the per-token work is C-level."""
    tokens = words(text, segmenter)
    uniq = list(dict.fromkeys(tokens))
    index = dict(zip(uniq, range(len(uniq))))
    ids = np.fromiter(map(index.__getitem__, tokens), np.int64, len(tokens))
    uniq_lengths = np.fromiter(map(len, uniq), np.int64, len(uniq))
    counts = np.bincount(ids, minlength=len(uniq))
    return TokenTable(text, uniq, ids, counts, uniq_lengths, uniq_lengths[ids])


def doc_tokens(doc: Document, segmenter: str = "chars") -> TokenTable:
    """`token_table(doc.text, segmenter)`, cached on the document while its text is unchanged."""
    key = f"tokens:{segmenter}"
    table = doc.cache.get(key)
    if table is None or table.text is not doc.text:
        table = doc.cache[key] = token_table(doc.text, segmenter)
    return table
