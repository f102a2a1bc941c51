"""Web-text quality filters: Gopher quality and repetition (Rae et al. 2021), C4's line and
document rules (Raffel et al. 2020) and FineWeb's line rules (Penedo et al. 2024).

Each filter is a `Step` with one threshold dataclass per script ("latin" for spaced scripts,
"cjk" for unsegmented ones, counted in characters; see `textstats`) and a "jieba" set used for
CJK documents when `zh_words = "jieba"` segments Chinese into words. The "latin" defaults are
the published ones as datatrove implements them; the "cjk" ones convert word counts to
characters (a Chinese word averages ~1.6 characters) and were checked against Chinese
Wikipedia; the "jieba" ones are FineWeb-2's Mandarin (cmn_Hani) configuration, but for the
alphabetic-word ratio, measured over characters (see `_JIEBA_QUALITY`). `quality_steps("web")`
builds the FineWeb order; `set_threshold` changes one value.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmtrain.data.prepare.documents import Document, Step
from llmtrain.data.prepare.textstats import (
    count_words,
    doc_tokens,
    has_long_word,
    ngram_keys,
    script_of,
    sentence_units,
)
from llmtrain.data.prepare.wiki_markup import resolve_conversion_markup
from llmtrain.errors import ConfigError

QUALITY_PRESETS = ("off", "web")
_PUNCT_ONLY = re.compile(r"[\W_]+")
_LETTER = re.compile(r"[^\W\d_]")
_PARAGRAPHS = re.compile(r"\n{2,}")
_LINES = re.compile(r"\n+")
STOP_WORDS = {
    "latin": frozenset({"the", "be", "to", "of", "and", "that", "have", "with"}),
    # the most frequent Chinese function characters (Hans and Hant forms)
    "cjk": frozenset("的了是在和有我不这也就都与为之其這與為們们个個"),
    # FineWeb-2's cmn_Hani stop words (jieba words)
    "jieba": frozenset("的年在月是和日了於·為有被人中为他與後也而由"),  # one character each
}


def _is_symbol(token: str) -> bool:
    return _PUNCT_ONLY.fullmatch(token) is not None


def _has_letter(token: str) -> bool:
    return _LETTER.search(token) is not None


_SYMBOL, _ALPHA = 1, 2  # token class bits
_CLASSES: dict[str, int] = {}  # token -> class bits, shared by every document of the process
_CLASSES_MAX = 1 << 20


def _token_classes(uniq: list[str]) -> np.ndarray:
    """(len(uniq),) class bits of each token: _SYMBOL (punctuation only), _ALPHA (has a
    letter). Memoised: a corpus repeats the same few thousand tokens (CJK characters, words)."""
    bits = list(map(_CLASSES.get, uniq))
    if None in bits:
        if len(_CLASSES) > _CLASSES_MAX:
            _CLASSES.clear()
        for i, b in enumerate(bits):
            if b is None:
                w = uniq[i]
                bits[i] = _CLASSES[w] = _SYMBOL * _is_symbol(w) | _ALPHA * _has_letter(w)
    return np.array(bits, dtype=np.int8)


def _script(doc: Document) -> str:
    script = doc.metadata.get("script")
    if script is None:
        script = doc.metadata["script"] = script_of(doc.text)
    return script


class ThresholdStep(Step):
    """A filter with one threshold dataclass per script in `self.thresholds`.

    `zh_words` is how CJK text splits into words: "chars" (each character, thresholds
    "cjk") or "jieba" (segmented words, thresholds "jieba").
    """

    PRESETS: dict[str, Any] = {}

    def __init__(self, zh_words: str = "chars") -> None:
        super().__init__()
        self.thresholds = dict(self.PRESETS)
        self.zh_words = zh_words

    def key(self, doc: Document) -> str:
        """The thresholds (and word segmenter) for `doc`: "latin", "cjk" or "jieba"."""
        script = _script(doc)
        return "jieba" if script == "cjk" and self.zh_words == "jieba" else script


def _segmenter(key: str) -> str:
    return "jieba" if key == "jieba" else "chars"


@dataclass(frozen=True)
class GopherRepetitionThresholds:
    dup_line_frac: float = 0.3
    dup_para_frac: float = 0.3
    dup_line_char_frac: float = 0.2
    dup_para_char_frac: float = 0.2
    top_ngrams: tuple[tuple[int, float], ...] = ((2, 0.2), (3, 0.18), (4, 0.16))
    dup_ngrams: tuple[tuple[int, float], ...] = (
        (5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10),
    )  # fmt: skip
    separator_chars: int = 1  # characters between two words when counting n-gram lengths


_CJK_REPETITION = GopherRepetitionThresholds(
    # n in characters: twice the word n-grams (a Chinese word is ~1.6 characters)
    top_ngrams=((4, 0.2), (6, 0.18), (8, 0.16)),
    dup_ngrams=((10, 0.15), (12, 0.14), (14, 0.13), (16, 0.12), (18, 0.11), (20, 0.10)),
    separator_chars=0,
)
_JIEBA_REPETITION = GopherRepetitionThresholds(  # FineWeb-2 cmn_Hani
    dup_line_frac=0.287,
    top_ngrams=((2, 0.256), (3, 0.201), (4, 0.171)),
    dup_ngrams=((5, 0.198), (6, 0.182), (7, 0.167), (8, 0.154), (9, 0.14), (10, 0.127)),
    separator_chars=0,
)


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(number of items seen before, their total characters)."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars


def duplicated_ngram_chars(ids: np.ndarray, lengths: np.ndarray, n: int, sep: int) -> int:
    """Characters of the words covered by a repeated occurrence of some n-gram.

    Vectorised: every n-gram occurrence after the first marks its n words; the coverage for
    n + 1 is a subset of the coverage for n, which lets callers stop early.
    """
    keys = ngram_keys(ids, n)
    if len(keys) < 2:
        return 0
    order = np.argsort(keys, kind="stable")  # equal keys keep text order: the first is first
    ordered = keys[order]
    later = np.zeros(len(keys), dtype=bool)
    later[1:] = ordered[1:] == ordered[:-1]
    if not later.any():
        return 0
    starts = order[later]
    size = len(ids) + 1
    delta = np.bincount(starts, minlength=size) - np.bincount(starts + n, minlength=size)
    covered = np.cumsum(delta[:-1]) > 0
    return int(lengths[covered].sum() + sep * np.count_nonzero(covered))


def top_ngram_chars(ids: np.ndarray, lengths: np.ndarray, n: int, sep: int) -> int:
    """Characters taken by all occurrences of the most frequent n-gram."""
    keys = ngram_keys(ids, n)
    if not len(keys):
        return 0
    ordered = np.sort(keys)
    edges = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1], [True])))
    runs = np.diff(edges)
    top = int(np.argmax(runs))
    start = int(np.argmax(keys == ordered[edges[top]]))
    return int(runs[top]) * (int(lengths[start : start + n].sum()) + sep * (n - 1))


class GopherRepetition(ThresholdStep):
    """Drop documents made of repeated lines, paragraphs or n-grams (Gopher, Table A1)."""

    name = "gopher_repetition"
    PRESETS = {
        "latin": GopherRepetitionThresholds(), "cjk": _CJK_REPETITION, "jieba": _JIEBA_REPETITION,
    }  # fmt: skip

    def process(self, doc: Document) -> Document | None:
        key = self.key(doc)
        t = self.thresholds[key]
        text = doc.text
        size = max(len(text), 1)
        for unit, parts in (
            ("para", _PARAGRAPHS.split(text.strip())),
            ("line", _LINES.split(text)),
        ):
            dups, chars = _duplicates(parts)
            if dups / max(len(parts), 1) > getattr(t, f"dup_{unit}_frac"):
                return self.drop(f"dup_{unit}_frac")
            if chars / size > getattr(t, f"dup_{unit}_char_frac"):
                return self.drop(f"dup_{unit}_char_frac")
        table = doc_tokens(doc, _segmenter(key))
        ids, lengths = table.ids, table.lengths
        for n, limit in t.top_ngrams:
            if top_ngram_chars(ids, lengths, n, t.separator_chars) / size > limit:
                return self.drop(f"top_{n}_gram")
        smallest = min((limit for _, limit in t.dup_ngrams), default=1.0)
        for n, limit in t.dup_ngrams:
            frac = duplicated_ngram_chars(ids, lengths, n, t.separator_chars) / size
            if frac > limit:
                return self.drop(f"duplicated_{n}_grams")
            if frac <= smallest:  # longer n-grams cover a subset: none can fail
                break
        return doc


@dataclass(frozen=True)
class GopherQualityThresholds:
    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float | None = 3.0
    max_mean_word_length: float | None = 10.0
    max_symbol_word_ratio: float = 0.1
    max_bullet_lines_ratio: float = 0.9
    max_ellipsis_lines_ratio: float = 0.3
    min_alpha_words_ratio: float = 0.8
    # Measure that ratio over character tokens (`textstats.words(text, "chars")`) instead of the
    # segmenter's words: see _JIEBA_QUALITY.
    alpha_ratio_in_chars: bool = False
    min_stop_words: int = 2


_CJK_QUALITY = GopherQualityThresholds(
    min_words=80, max_words=160_000, min_mean_word_length=None, max_mean_word_length=None
)
# FineWeb-2 cmn_Hani for the word lengths. Its alphabetic-word ratio (0.735 of jieba tokens)
# drops 10 % of Chinese Wikipedia (datatrove with that config: 313 of 3,104 paragraphs): jieba
# folds ~1.6 letters into a word but leaves every mark of ，、（）「」 and every number a word
# of its own, so the ratio follows punctuation density, not the share of letters. Measured over
# characters, as in "chars" mode, with Gopher's 0.8, it keeps Wikipedia and still drops
# punctuated keyword lists (without punctuation tokens in the ratio, those pass it).
_JIEBA_QUALITY = GopherQualityThresholds(
    min_mean_word_length=1, max_mean_word_length=5, alpha_ratio_in_chars=True
)


class GopherQuality(ThresholdStep):
    """Drop documents too short/long, of odd word lengths, symbol-heavy, list-like or without
    stop words (Gopher quality rules)."""

    name = "gopher_quality"
    PRESETS = {"latin": GopherQualityThresholds(), "cjk": _CJK_QUALITY, "jieba": _JIEBA_QUALITY}

    def process(self, doc: Document) -> Document | None:
        script = self.key(doc)
        t = self.thresholds[script]
        text = doc.text
        table = doc_tokens(doc, _segmenter(script))
        n_tokens = max(table.n_tokens, 1)
        classes = _token_classes(table.uniq)
        symbol = (classes & _SYMBOL) != 0
        n_words = table.n_tokens - int(table.counts[symbol].sum())
        if n_words < t.min_words:
            return self.drop("too_few_words")
        if n_words > t.max_words:
            return self.drop("too_many_words")
        word_chars = table.counts[~symbol] @ table.uniq_lengths[~symbol]
        mean_length = word_chars / n_words
        if t.min_mean_word_length is not None and mean_length < t.min_mean_word_length:
            return self.drop("short_mean_word_length")
        if t.max_mean_word_length is not None and mean_length > t.max_mean_word_length:
            return self.drop("long_mean_word_length")
        if text.count("#") / n_tokens > t.max_symbol_word_ratio:
            return self.drop("too_many_hashes")
        if (text.count("...") + text.count("…")) / n_tokens > t.max_symbol_word_ratio:
            return self.drop("too_many_ellipses")
        lines = text.splitlines() or [""]
        bullets = sum(1 for s in lines if s.lstrip().startswith(("•", "-")))
        if bullets / len(lines) > t.max_bullet_lines_ratio:
            return self.drop("too_many_bullet_lines")
        ellipsis_end = sum(1 for s in lines if s.rstrip().endswith(("...", "…")))
        if ellipsis_end / len(lines) > t.max_ellipsis_lines_ratio:
            return self.drop("too_many_ellipsis_lines")
        units = doc_tokens(doc, "chars") if t.alpha_ratio_in_chars else table
        alpha = ((_token_classes(units.uniq) if units is not table else classes) & _ALPHA) != 0
        if units.counts[alpha].sum() / max(units.n_tokens, 1) < t.min_alpha_words_ratio:
            return self.drop("too_few_alphabetic_words")
        lowered = map(str.lower, table.uniq)
        is_stop = np.fromiter(map(STOP_WORDS[script].__contains__, lowered), bool, len(table.uniq))
        if table.counts[is_stop].sum() < t.min_stop_words:
            return self.drop("too_few_stop_words")
        return doc


_CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]|\[编辑\]|\[來源請求\]", re.I)
_POLICY = (
    "terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
    "use cookies", "隐私政策", "隱私權政策", "使用条款", "使用條款",
)  # fmt: skip
_SENTENCE_END = {"latin": re.compile(r"[.!?]+(?=\s|$)"), "cjk": re.compile(r"[。！？!?]+")}
_SENTENCE_END["jieba"] = _SENTENCE_END["cjk"]


@dataclass(frozen=True)
class C4Thresholds:
    min_sentences: int = 5
    min_words_per_line: int = 3
    max_word_length: int = 1000
    filter_no_terminal_punct: bool = False  # FineWeb turns C4's rule off (too aggressive)
    terminal_punct: tuple[str, ...] = (".", "?", "!", '"', "'")


_CJK_C4 = C4Thresholds(
    # One Chinese sentence (up to 。) often holds what English writes as two or three.
    min_sentences=3,
    min_words_per_line=3,
    terminal_punct=(".", "?", "!", '"', "'", "。", "！", "？", "”", "」", "』"),
)


class C4Filter(ThresholdStep):
    """C4's rules: remove lines that are short, policy/JavaScript notices or over-long words;
    drop documents with lorem ipsum, a curly bracket (code) or too few sentences."""

    name = "c4"
    PRESETS = {"latin": C4Thresholds(), "cjk": _CJK_C4, "jieba": _CJK_C4}

    def process(self, doc: Document) -> Document | None:
        script = self.key(doc)
        t = self.thresholds[script]
        seg = _segmenter(script)
        kept, sentences = [], 0
        text, spans = resolve_conversion_markup(doc.text)  # not code: kept, as displayed
        self.stats["conversion_markup_resolved"] += spans
        for raw in text.splitlines():
            line = _CITATION.sub("", raw.strip())
            lower = line.lower()
            if "lorem ipsum" in lower:
                return self.drop("lorem_ipsum")
            if "{" in line:
                return self.drop("curly_bracket")
            if (
                "javascript" in lower
                or any(p in lower for p in _POLICY)
                or (t.filter_no_terminal_punct and not line.endswith(t.terminal_punct))
                or count_words(line, seg, t.min_words_per_line) < t.min_words_per_line
                or has_long_word(line, t.max_word_length, seg)
            ):
                self.stats["lines_removed"] += 1
                continue
            sentences += len(_SENTENCE_END[script].findall(line))
            kept.append(line)
        if sentences < t.min_sentences:
            return self.drop("too_few_sentences")
        doc.text = "\n".join(kept)
        return doc


@dataclass(frozen=True)
class FineWebThresholds:
    min_line_punct_ratio: float = 0.12
    max_short_line_ratio: float = 0.67
    short_line_chars: int = 30
    max_char_duplicates_ratio: float = 0.01
    max_newline_ratio: float = 0.3


_CJK_FINEWEB = FineWebThresholds(short_line_chars=15)  # ~30 Latin characters of content
_JIEBA_FINEWEB = FineWebThresholds(  # FineWeb-2 cmn_Hani
    min_line_punct_ratio=0.106, short_line_chars=15, max_newline_ratio=0.178
)
# datatrove's TERMINAL_PUNCTUATION, abridged to the scripts we test (Latin, CJK, Arabic, Devanagari)
_TERMINAL = tuple(".!?。！？…؟।\"'”」』")
_CLOSERS = "”’」』）)\"'"  # after a CJK sentence's end mark


def _punct_line_ratio(lines: list[str], key: str) -> float:
    """Share of `lines` ending in terminal punctuation. CJK: of sentences, cut at 。！？；…
    (a Chinese line often holds a whole paragraph, its last words a heading or caption)."""
    if key == "latin":
        return sum(1 for s in lines if s.endswith(_TERMINAL)) / len(lines)
    units = [u.rstrip(_CLOSERS) for s in lines for u in sentence_units(s)] or [""]
    return sum(1 for u in units if u.endswith((*_TERMINAL, "；"))) / len(units)


class FineWebFilter(ThresholdStep):
    """FineWeb's extra rules: enough lines ending in punctuation, not mostly short lines,
    little duplicated line text, not a list of one word per line."""

    name = "fineweb"
    PRESETS = {"latin": FineWebThresholds(), "cjk": _CJK_FINEWEB, "jieba": _JIEBA_FINEWEB}

    def process(self, doc: Document) -> Document | None:
        key = self.key(doc)
        t = self.thresholds[key]
        text = doc.text
        lines = [line for line in text.split("\n") if line.strip()]
        if not lines:
            return self.drop("empty")
        if _punct_line_ratio(lines, key) < t.min_line_punct_ratio:
            return self.drop("line_punct_ratio")
        short = sum(1 for s in lines if len(s) <= t.short_line_chars)
        if short / len(lines) > t.max_short_line_ratio:
            return self.drop("short_line_ratio")
        if _duplicates(lines)[1] / max(len(text) - text.count("\n"), 1) > t.max_char_duplicates_ratio:  # fmt: skip
            return self.drop("char_dup_ratio")
        newlines, ratio = text.count("\n"), t.max_newline_ratio
        if newlines or ratio < 0:  # words only counted up to where the ratio must pass
            limit = int(newlines / ratio) + 2 if ratio > 0 else None
            if newlines / max(count_words(text, _segmenter(key), limit), 1) > ratio:
                return self.drop("list_ratio")
        return doc


QUALITY_STEPS: dict[str, type[ThresholdStep]] = {
    s.name: s for s in (GopherRepetition, GopherQuality, C4Filter, FineWebFilter)
}


def quality_steps(
    preset: str, overrides: list[str] | tuple[str, ...] = (), zh_words: str = "chars"
) -> list[Step]:
    """The filters of `preset` ("off": none; "web": FineWeb's order), `overrides` applied;
    CJK text is split into words by `zh_words` ("chars" or "jieba")."""
    if preset not in QUALITY_PRESETS:
        raise ConfigError(f"quality = {preset!r} is not a preset; choose one of {QUALITY_PRESETS}")
    steps = [] if preset == "off" else [cls(zh_words) for cls in QUALITY_STEPS.values()]
    for item in overrides:
        set_threshold(steps, item)
    return steps


def set_threshold(steps: list[Step], item: str) -> None:
    """Apply "filter[.script].field=value" (script latin when omitted), e.g.
    "gopher_quality.min_words=30" or "c4.cjk.min_sentences=2"."""
    key, sep, value = item.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) not in (2, 3):
        raise ConfigError(
            f"quality setting {item!r} must look like filter[.script].field=value, "
            "e.g. gopher_quality.min_words=30 or c4.cjk.min_sentences=2"
        )
    name, script, fname = (parts[0], "latin", parts[1]) if len(parts) == 2 else parts
    step = next((s for s in steps if s.name == name), None)
    if not isinstance(step, ThresholdStep):
        active = ", ".join(s.name for s in steps) or "none (pass --quality web)"
        raise ConfigError(f"quality setting {item!r}: no active filter {name!r}; active: {active}")
    if script not in step.thresholds:
        raise ConfigError(f"quality setting {item!r}: script {script!r} is not latin, cjk or jieba")
    current = step.thresholds[script]
    names = [f.name for f in dataclasses.fields(current)]
    if fname not in names:
        raise ConfigError(f"quality setting {item!r}: {name} has no {fname!r}; fields: {names}")
    old = getattr(current, fname)
    step.thresholds[script] = dataclasses.replace(current, **{fname: _parse(item, value, old)})


def _parse(item: str, value: str, old: Any) -> Any:
    text = value.strip()
    try:
        if isinstance(old, bool):
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        if isinstance(old, int):
            return int(text)
        if isinstance(old, float) or old is None:
            return None if text.lower() in ("none", "null") else float(text)
        if isinstance(old, tuple):
            parsed = json.loads(text)
            return tuple(tuple(x) if isinstance(x, list) else x for x in parsed)
    except ValueError:
        pass
    raise ConfigError(
        f"quality setting {item!r}: {text!r} is not a valid {type(old).__name__} (now {old!r})"
    )


__all__ = [
    "C4Filter",
    "FineWebFilter",
    "GopherQuality",
    "GopherRepetition",
    "QUALITY_PRESETS",
    "QUALITY_STEPS",
    "quality_steps",
    "set_threshold",
]
