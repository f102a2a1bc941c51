"""Decontamination: drop (or flag) documents that share a long n-gram with evaluation data.

`EvalNgrams.from_files` reads evaluation files (JSONL: every string value of each record,
nested ones included, e.g. PIQA's goal/sol1/sol2 or ARC's question stem and choices; other
text files: one item per line) and hashes their word n-grams (default 13, GPT-3's setting).
Words are lower-cased runs of letters/digits (as in `minhash`); each CJK character is one word. An item shorter
than n words contributes itself whole when it has at least `min_words` words, so short
questions are caught too. `Decontaminate` hashes each document's n-grams the same way
(vectorised) and looks them up in sorted arrays: memory is 8 bytes per evaluation n-gram.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from llmtrain.data.prepare.documents import Document, Step
from llmtrain.data.prepare.formats import open_binary
from llmtrain.data.prepare.minhash import word_hashes
from llmtrain.data.prepare.textstats import CJK_CLASS, ngram_keys
from llmtrain.errors import DataError

DEFAULT_NGRAM = 13
MIN_WORDS = 8
_CJK = re.compile(rf"([{CJK_CLASS}])")


def word_ids(text: str) -> np.ndarray:
    """One uint64 hash per word of the lower-cased text (vectorised; CJK: per character)."""
    return word_hashes(_CJK.sub(r" \1 ", text))


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def eval_items(path: Path) -> Iterator[str]:
    """The text items of one evaluation file (see the module docstring)."""
    try:
        with open_binary(path) as f:
            lines = f.read().decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(
            f"--decontaminate file {path} cannot be read as UTF-8 text ({e}); give JSONL or "
            "text evaluation files"
        ) from None
    is_jsonl = path.name.endswith((".jsonl", ".jsonl.gz", ".json"))
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if is_jsonl:
            try:
                yield from _strings(json.loads(line))
            except json.JSONDecodeError as e:
                raise DataError(
                    f"--decontaminate file {path}:{lineno} is not valid JSON ({e.msg}); fix "
                    "the line or pass the file as plain text (.txt, one item a line)"
                ) from None
        else:
            yield line


class EvalNgrams:
    """Sorted uint64 n-gram hashes of evaluation text, grouped by n-gram length."""

    def __init__(self, by_length: dict[int, np.ndarray], n: int, files: list[str]) -> None:
        self.by_length, self.n, self.files = by_length, n, files

    @classmethod
    def from_files(cls, paths: list[str | Path], n: int = DEFAULT_NGRAM) -> EvalNgrams:
        found: dict[int, list[np.ndarray]] = {}
        for path in map(Path, paths):
            if not path.is_file():
                raise DataError(f"--decontaminate file not found: {path}")
            for item in eval_items(path):
                ids = word_ids(item)
                if len(ids) >= n:
                    found.setdefault(n, []).append(ngram_keys(ids, n))
                elif len(ids) >= MIN_WORDS:
                    found.setdefault(len(ids), []).append(ngram_keys(ids, len(ids)))
        if not found:
            raise DataError(
                f"--decontaminate files {', '.join(map(str, paths))} hold no item of at least "
                f"{MIN_WORDS} words; check the files"
            )
        by_length = {k: np.unique(np.concatenate(v)) for k, v in sorted(found.items())}
        return cls(by_length, n, [str(p) for p in paths])

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_length.values())

    def matches(self, text: str) -> int:
        """How many of the document's n-grams (all lengths) occur in the evaluation data."""
        ids = word_ids(text)
        hits = 0
        for length, table in self.by_length.items():
            keys = ngram_keys(ids, length)
            if len(keys):
                pos = np.minimum(np.searchsorted(table, keys), len(table) - 1)
                hits += int(np.count_nonzero(table[pos] == keys))
        return hits


class Decontaminate(Step):
    """Drop documents sharing an n-gram with the evaluation data (`contaminated`), or with
    `flag_only` keep them and set `metadata["contaminated_ngrams"]`."""

    name = "decontaminate"

    def __init__(self, ngrams: EvalNgrams, flag_only: bool = False) -> None:
        super().__init__()
        self.ngrams, self.flag_only = ngrams, flag_only

    def process(self, doc: Document) -> Document | None:
        hits = self.ngrams.matches(doc.text)
        if not hits:
            return doc
        self.stats["ngram_matches"] += hits
        if self.flag_only:
            self.stats["flagged_contaminated"] += 1
            self.add_example("contaminated", doc)
            doc.metadata["contaminated_ngrams"] = hits
            return doc
        return self.drop("contaminated")
