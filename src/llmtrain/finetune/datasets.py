"""Classification examples from labelled rows, and the data source the Trainer reads.

`parse_rows` keeps each usable row (text, optional pair text, label id, line) and counts every
skipped one by reason with its line numbers (`Skipped`): nothing is dropped silently.
`encode_examples` lays an example out as `BOS text EOS [pair EOS]` (BOS/EOS act as CLS/SEP;
segment type 1 for the pair), cut to `max_length`. `ClassificationData.batch(indices)` gives
right-padded tensors: ids (B, T), lengths (B,), token_type (B, T), labels (B,).
`ExampleBatches` addresses the shuffled example stream by (step, micro, rank) like the
pre-training loader: a pure function of (seed, sample index), so resume is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from llmtrain.data.loader import SampleStream
from llmtrain.errors import DataError
from llmtrain.finetune.labels import LabelMap
from llmtrain.finetune.tables import Row


@dataclass
class Skipped:
    lines: dict[str, list[int]] = field(default_factory=dict)  # reason -> line numbers

    def add(self, reason: str, line: int) -> None:
        self.lines.setdefault(reason, []).append(line)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.lines.values())

    def describe(self, path: str) -> str:
        parts = []
        for reason, lines in self.lines.items():
            shown = ", ".join(map(str, lines[:10])) + (", ..." if len(lines) > 10 else "")
            parts.append(f"{len(lines)} with {reason} (lines {shown})")
        return f"{path}: skipped {self.total} rows: " + "; ".join(parts)

    def to_dict(self) -> dict[str, list[int]]:
        return dict(self.lines)


@dataclass
class TextExamples:
    texts: list[str]
    pairs: list[str] | None
    labels: list[int | None]
    lines: list[int]
    skipped: Skipped

    def subset(self, idx: Sequence[int]) -> TextExamples:
        pairs = None if self.pairs is None else [self.pairs[i] for i in idx]
        return TextExamples(
            [self.texts[i] for i in idx],
            pairs,
            [self.labels[i] for i in idx],
            [self.lines[i] for i in idx],
            Skipped(),
        )


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def parse_rows(
    rows: list[Row],
    text_field: str,
    pair_field: str = "",
    label_field: str = "",
    labels: LabelMap | None = None,
) -> TextExamples:
    """Usable rows of a file; `label_field` "" = unlabelled (predict). With `labels`, a label
    outside the map is skipped and reported ("unknown label")."""
    out = TextExamples([], [] if pair_field else None, [], [], Skipped())
    for r in rows:
        text = _text(r.fields.get(text_field))
        if not text:
            out.skipped.add("empty text", r.line)
            continue
        label: int | None = None
        if label_field:
            raw = _text(r.fields.get(label_field))
            if not raw:
                out.skipped.add("empty label", r.line)
                continue
            if labels is not None:
                label = labels.get(raw)
                if label is None:
                    out.skipped.add(f"unknown label (known: {', '.join(labels.names)})", r.line)
                    continue
            else:
                label = raw  # type: ignore[assignment]  # mapped once all labels are seen
        out.texts.append(text)
        if out.pairs is not None:
            out.pairs.append(_text(r.fields.get(pair_field)))
        out.labels.append(label)
        out.lines.append(r.line)
    return out


def encode_examples(
    tokenizer, ex: TextExamples, max_length: int
) -> tuple[list[np.ndarray], list[np.ndarray] | None, int]:
    """Token ids (and segment types with pairs) per example, and how many were cut."""
    bos, eos = tokenizer.bos_id, tokenizer.eos_id
    texts = tokenizer.encode_batch(ex.texts)
    pairs = tokenizer.encode_batch(ex.pairs) if ex.pairs is not None else None
    ids, types, cut = [], [] if pairs is not None else None, 0
    for i, a in enumerate(texts):
        b = pairs[i] if pairs is not None else []
        room = max_length - 2 - (len(b) + 1 if pairs is not None else 0)
        if pairs is not None and room < max_length // 2:  # cut the pair to half
            b = b[: max(0, max_length // 2 - 1)]
            room = max_length - 2 - (len(b) + 1)
        if len(a) > room:
            a, cut = a[: max(room, 1)], cut + 1
        row = [bos, *a, eos] + ([*b, eos] if pairs is not None else [])
        ids.append(np.asarray(row, dtype=np.int64))
        if types is not None:
            types.append(np.asarray([0] * (len(a) + 2) + [1] * (len(b) + 1), dtype=np.int64))
    return ids, types, cut


def pad_rows(rows: Sequence[np.ndarray], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids (B, T) right-padded with pad_id, lengths (B,))."""
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
    out = torch.full((len(rows), int(lengths.max())), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.from_numpy(r)
    return out, lengths


class ClassificationData:
    """A data source: `len()` examples, `batch(indices)` -> dict of padded tensors."""

    def __init__(self, tokenizer, ex: TextExamples, max_length: int) -> None:
        if not ex.texts:
            raise DataError("no usable examples (every row was skipped); check the file")
        self.ids, self.types, self.truncated = encode_examples(tokenizer, ex, max_length)
        self.labels = torch.tensor([-1 if y is None else int(y) for y in ex.labels])
        self.lines, self.pad_id = ex.lines, tokenizer.pad_id

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        idx = [int(i) for i in indices]
        ids, lengths = pad_rows([self.ids[i] for i in idx], self.pad_id)
        out = {"ids": ids, "lengths": lengths, "labels": self.labels[idx]}
        if self.types is not None:
            out["token_type"], _ = pad_rows([self.types[i] for i in idx], 0)
        return out


class Oversampled:
    """A view of `source` where every class is repeated up to the largest class's count
    (a fixed, seeded choice of the extra copies): minority classes are seen as often."""

    def __init__(self, source, labels: Sequence[int], seed: int) -> None:
        rng = np.random.default_rng([seed, 7])
        labels = np.asarray(labels)
        target = max(np.bincount(labels))
        index = []
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            extra = rng.choice(members, target - len(members), replace=True)
            index.extend(members.tolist() + extra.tolist())
        self.source, self.index = source, np.asarray(sorted(index))

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, indices: Sequence[int]):
        return self.source.batch([int(self.index[int(i)]) for i in indices])


class ExampleBatches(SampleStream):
    """Global sample k = example perm_epoch[k mod n] with perm_epoch from (seed, epoch); step s,
    micro-batch m, rank r take samples s·B + (m·W + r)·M ... + M (the loader's rule)."""

    def __init__(self, source, seed: int) -> None:
        self.source, self.seed = source, seed
        self._perms: dict[int, np.ndarray] = {}

    def indices(self, start: int, count: int) -> list[int]:
        n, out = len(self.source), []
        for k in range(start, start + count):
            epoch, pos = divmod(k, n)
            if epoch not in self._perms:
                self._perms = {epoch: np.random.default_rng([self.seed, epoch]).permutation(n)}
            out.append(int(self._perms[epoch][pos]))
        return out

    def samples(self, start: int, count: int):
        """Global samples [start, start + count) as one batch (the trainer's sampler reads
        the range of each micro-batch through this, as from `TrainBatches`)."""
        return self.source.batch(self.indices(start, count))
