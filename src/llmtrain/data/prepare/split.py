"""Train/validation split.

Several documents: each goes to val when a seeded hash of its text falls below
`val_fraction`, so the split is deterministic and independent of file order; both sides get at
least one document (`SplitRule`). Contiguous, as nanoGPT does, when that cannot work: one
document (a single book, Tiny Shakespeare), the pieces the reader cut one long text file into,
or few documents (fewer than 2 / `val_fraction`: 20 at 0.1) where the hash split would put
more than twice `val_fraction` of the text into val (two files and one forced into val: half
the text; with n equal documents val gets at least 1/n). Then the last
`val_fraction` of the characters, in input order, becomes val, cut at the nearest line
boundary inside the document where it falls (`contiguous_at`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np

_SCORE_SCALE = float(2**64)
FEW_VAL_DOCUMENTS = 2  # below this many val documents expected, a hash sample is too coarse


def split_score(text: str, seed: int) -> int:
    """A uint64 from a seeded blake2b hash of the text; val when score / 2**64 < val_fraction."""
    h = hashlib.blake2b(text.encode("utf-8"), digest_size=8, key=str(seed).encode())
    return int.from_bytes(h.digest(), "little")


class SplitRule:
    """The document split, decided a document at a time from its score and its place.

    `observe` every kept document's score (and length in characters, and the file it is a
    piece of, if any) once, in order; it keeps a few numbers, not the scores. `is_val(i,
    score)` then says where document i goes: below `val_fraction` of the score range, except
    that with >= 2 documents the lowest score goes to val when no document would, and the
    highest to train when every document would. `contiguous()` says when that split is not
    to be used at all (see the module docstring).
    """

    def __init__(self, val_fraction: float) -> None:
        self.val_fraction = val_fraction
        self.count = self.val_count = 0
        self.min_index = self.max_index = -1
        self._min, self._max = 2**64, -1
        self.chars = self.val_chars = self.min_chars = self.max_chars = 0
        self.unit, self.one_unit = "", True  # the file every document is a piece of, if any

    def state(self) -> dict[str, int | float | str | bool]:
        """The numbers (and the fraction), as JSON (a checkpoint)."""
        return {"val_fraction": self.val_fraction, "count": self.count,
                "val_count": self.val_count, "min_index": self.min_index,
                "max_index": self.max_index, "min": self._min, "max": self._max,
                "chars": self.chars, "val_chars": self.val_chars, "min_chars": self.min_chars,
                "max_chars": self.max_chars, "unit": self.unit, "one_unit": self.one_unit}  # fmt: skip

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SplitRule:
        rule = cls(float(state["val_fraction"]))
        rule.count, rule.val_count = int(state["count"]), int(state["val_count"])
        rule.min_index, rule.max_index = int(state["min_index"]), int(state["max_index"])
        rule._min, rule._max = int(state["min"]), int(state["max"])
        for key in ("chars", "val_chars", "min_chars", "max_chars"):
            setattr(rule, key, int(state.get(key, 0)))
        rule.unit, rule.one_unit = str(state.get("unit", "")), bool(state.get("one_unit", False))
        return rule

    def _below(self, score: int) -> bool:
        return score / _SCORE_SCALE < self.val_fraction

    def observe(self, score: int, chars: int = 0, unit: str = "") -> None:
        """Count a document: its score, its length and `unit`, the file it is a piece of
        ("" when it is a whole document)."""
        if score < self._min:
            self._min, self.min_index, self.min_chars = score, self.count, chars
        if score > self._max:
            self._max, self.max_index, self.max_chars = score, self.count, chars
        below = self._below(score)
        self.val_count += below
        self.val_chars += chars if below else 0
        self.chars += chars
        if self.count == 0:
            self.unit = unit
        self.one_unit = self.one_unit and bool(unit) and unit == self.unit
        self.count += 1

    def is_val(self, index: int, score: int) -> bool:
        if self.count >= 2:
            if self.val_count == 0 and index == self.min_index:
                return True
            if self.val_count == self.count and index == self.max_index:
                return False
        return self._below(score)

    def val_share(self) -> float:
        """The fraction of the characters that `is_val` sends to val."""
        val = self.val_chars
        if self.count >= 2 and self.val_count == 0:
            val = self.min_chars
        elif self.count >= 2 and self.val_count == self.count:
            val = self.chars - self.max_chars
        return val / self.chars if self.chars else 0.0

    def contiguous(self) -> bool:
        """Whether to split contiguously rather than by document: one document, the pieces
        of one file, or few documents (fewer than 2 / `val_fraction`) where the document
        split would give val over twice `val_fraction` of the text."""
        if self.count <= 1 or self.one_unit:
            return True
        few = self.count * self.val_fraction < FEW_VAL_DOCUMENTS
        return few and self.chars > 0 and self.val_share() > 2 * self.val_fraction


def assign_val(scores: np.ndarray, val_fraction: float) -> np.ndarray:
    """Boolean mask of val documents (`SplitRule` over an array of scores)."""
    rule = SplitRule(val_fraction)
    for score in scores.tolist():
        rule.observe(score)
    return np.array([rule.is_val(i, s) for i, s in enumerate(scores.tolist())], dtype=bool)


def contiguous_cut(text: str, val_fraction: float) -> int:
    """Character index where val starts in a one-document corpus (`cut_near` the last
    `val_fraction` of the characters)."""
    return cut_near(text, int(len(text) * (1.0 - val_fraction)))


def cut_near(text: str, target: int) -> int:
    """Just after the newline nearest character `target` of `text`.

    Without a newline within 1% of the text (or when it would empty a side), the exact
    character position is used, like nanoGPT's `data[int(n * 0.9):]`.
    """
    n = len(text)
    window = max(256, n // 100)
    after = text.find("\n", target, target + window)
    before = text.rfind("\n", max(0, target - window), target)
    candidates = [i + 1 for i in (after, before) if i != -1 and 0 < i + 1 < n]
    if not candidates:
        return target
    return min(candidates, key=lambda c: abs(c - target))


def contiguous_at(texts: Iterable[str], total: int, val_fraction: float) -> tuple[int, int]:
    """(document j, character c): where val starts when `texts` (the documents in order) are
    split contiguously; `total` is their length in characters.
    Documents before j go to train, j's text[:c] to train and text[c:] to val, the rest to
    val; both sides get at least one character."""
    target = int(total * (1.0 - val_fraction))
    seen = 0
    for j, text in enumerate(texts):
        if seen + len(text) > target:
            c = cut_near(text, target - seen)
            return j, min(max(c, 1 if j == 0 else 0), len(text) - 1)
        seen += len(text)
    raise ValueError(f"contiguous_at: {total} characters expected, {seen} seen")
