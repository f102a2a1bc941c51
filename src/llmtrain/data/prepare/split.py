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


def assign_val(scores: np.ndarray, val_fraction: float) -> np.ndarray:
    """Boolean mask of val documents; with >= 2 documents neither split is left empty."""
    is_val = scores.astype(np.float64) / _SCORE_SCALE < val_fraction
    if len(scores) >= 2:
        if not is_val.any():
            is_val[int(np.argmin(scores))] = True
        if is_val.all():
            is_val[int(np.argmax(scores))] = False
    return is_val


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
