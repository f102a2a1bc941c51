"""Train/validation split.

One document (a single book, Tiny Shakespeare): contiguous, as nanoGPT does; the last
`val_fraction` of the characters becomes val, cut at the nearest line boundary. Several
documents: each goes to val when a seeded hash of its text falls below `val_fraction`, so the
split is deterministic and independent of file order; both sides get at least one document.
"""

from __future__ import annotations

import hashlib

import numpy as np

_SCORE_SCALE = float(2**64)


def split_score(text: str, seed: int) -> int:
    """A uint64 from a seeded blake2b hash of the text; val when score / 2**64 < val_fraction."""
    h = hashlib.blake2b(text.encode("utf-8"), digest_size=8, key=str(seed).encode())
    return int.from_bytes(h.digest(), "little")


class SplitRule:
    """The document split, decided a document at a time from its score and its place.

    `observe` every kept document's score once, in order (it keeps 5 numbers, not the
    scores); `is_val(i, score)` then says where document i goes: below `val_fraction` of
    the score range, except that with >= 2 documents the lowest score goes to val when no
    document would, and the highest to train when every document would.
    """

    def __init__(self, val_fraction: float) -> None:
        self.val_fraction = val_fraction
        self.count = self.val_count = 0
        self.min_index = self.max_index = -1
        self._min, self._max = 2**64, -1

    def state(self) -> dict[str, int | float]:
        """The 5 numbers (and the fraction), as JSON (a checkpoint)."""
        return {"val_fraction": self.val_fraction, "count": self.count,
                "val_count": self.val_count, "min_index": self.min_index,
                "max_index": self.max_index, "min": self._min, "max": self._max}  # fmt: skip

    @classmethod
    def from_state(cls, state: dict[str, int | float]) -> SplitRule:
        rule = cls(float(state["val_fraction"]))
        rule.count, rule.val_count = int(state["count"]), int(state["val_count"])
        rule.min_index, rule.max_index = int(state["min_index"]), int(state["max_index"])
        rule._min, rule._max = int(state["min"]), int(state["max"])
        return rule

    def _below(self, score: int) -> bool:
        return score / _SCORE_SCALE < self.val_fraction

    def observe(self, score: int) -> None:
        if score < self._min:
            self._min, self.min_index = score, self.count
        if score > self._max:
            self._max, self.max_index = score, self.count
        self.val_count += self._below(score)
        self.count += 1

    def is_val(self, index: int, score: int) -> bool:
        if self.count >= 2:
            if self.val_count == 0 and index == self.min_index:
                return True
            if self.val_count == self.count and index == self.max_index:
                return False
        return self._below(score)


def assign_val(scores: np.ndarray, val_fraction: float) -> np.ndarray:
    """Boolean mask of val documents (`SplitRule` over an array of scores)."""
    rule = SplitRule(val_fraction)
    for score in scores.tolist():
        rule.observe(score)
    return np.array([rule.is_val(i, s) for i, s in enumerate(scores.tolist())], dtype=bool)


def contiguous_cut(text: str, val_fraction: float) -> int:
    """Character index where val starts: just after the newline nearest `(1 - f) * len(text)`.

    Without a newline within 1% of the text (or when it would empty a side), the exact
    character position is used, like nanoGPT's `data[int(n * 0.9):]`.
    """
    n = len(text)
    target = int(n * (1.0 - val_fraction))
    window = max(256, n // 100)
    after = text.find("\n", target, target + window)
    before = text.rfind("\n", max(0, target - window), target)
    candidates = [i + 1 for i in (after, before) if i != -1 and 0 < i + 1 < n]
    if not candidates:
        return target
    return min(candidates, key=lambda c: abs(c - target))
