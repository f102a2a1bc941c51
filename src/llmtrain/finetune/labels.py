"""Label maps, the stratified split and the class statistics of a classification set.

`LabelMap` turns string or integer labels into ids 0..k-1 (saved with the run as
labels.json, so predictions name the same labels); `stratified_split` holds out the same
share of every class with a fixed seed; `class_weights` gives "balanced" loss weights.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmtrain.errors import DataError
from llmtrain.utils.io import atomic_write_json

LABELS_FILE = "labels.json"


def label_key(value: Any) -> str:
    """Labels compare as strings: 1, "1" and 1.0 from CSV, JSON and Parquet are one label."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


class LabelMap:
    def __init__(self, names: Sequence[str]) -> None:
        self.names = [label_key(n) for n in names]
        if len(set(self.names)) != len(self.names):
            raise DataError(f"duplicate labels in {self.names}")
        self.index = {n: i for i, n in enumerate(self.names)}

    @classmethod
    def from_values(cls, values: Sequence[Any], order: Sequence[str] = ()) -> LabelMap:
        """The given order, or the labels seen sorted (numerically when all are integers)."""
        if order:
            return cls(order)
        seen = {label_key(v) for v in values}
        ints = all(s.lstrip("-").isdigit() for s in seen)
        return cls(sorted(seen, key=(lambda s: (int(s), s)) if ints else None))

    def __len__(self) -> int:
        return len(self.names)

    def get(self, value: Any) -> int | None:
        return self.index.get(label_key(value))

    def save(self, run_dir: str | Path) -> None:
        atomic_write_json(Path(run_dir) / LABELS_FILE, {"labels": self.names})

    @classmethod
    def load(cls, run_dir: str | Path) -> LabelMap:
        path = Path(run_dir) / LABELS_FILE
        try:
            return cls(json.loads(path.read_text(encoding="utf-8"))["labels"])
        except (OSError, KeyError, json.JSONDecodeError) as e:
            raise DataError(f"{path}: missing or unreadable label map ({e})") from None


def stratified_split(
    labels: Sequence[int], fractions: Sequence[float], seed: int
) -> list[list[int]]:
    """Indices of the parts [rest, part_1, ...]: each class shuffled with (seed) and cut so that
    part i holds round(fraction_i · class count) of it. Deterministic; every class is kept in
    the rest when it is too small to cut."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(int(y), []).append(i)
    for c in sorted(by_class):
        idx = np.array(by_class[c])[rng.permutation(len(by_class[c]))]
        start = 0
        for k, f in enumerate(fractions, start=1):
            n = int(round(f * len(idx))) if len(idx) > len(fractions) else 0
            parts[k].extend(idx[start : start + n].tolist())
            start += n
        parts[0].extend(idx[start:].tolist())
    return [sorted(p) for p in parts]


def class_counts(labels: Sequence[int], k: int) -> list[int]:
    c = Counter(int(y) for y in labels)
    return [c.get(i, 0) for i in range(k)]


def balanced_weights(counts: Sequence[int]) -> list[float]:
    """n / (k · n_c) per class (scikit-learn's "balanced"): the mean weight over samples is 1."""
    n, k = sum(counts), len(counts)
    return [n / (k * c) if c else 0.0 for c in counts]


def distribution_line(names: Sequence[str], counts: Sequence[int]) -> str:
    total = max(1, sum(counts))
    return ", ".join(f"{n}: {c} ({100 * c / total:.1f}%)" for n, c in zip(names, counts))
