"""`Document` (text + id + source + metadata) and `Step`, the base of every pipeline step.

A step is a named filter/mapper over a stream of documents that counts what it saw, kept and
removed (by reason), in the spirit of datatrove's pipeline blocks. `Problems` decides whether
a bad input file or line stops the run (default) or is skipped and recorded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from llmtrain.errors import DataError

MAX_RECORDED_PROBLEMS = 200
EXAMPLES_PER_REASON = 3  # removed texts kept per reason for report.html / --dry-run
EXAMPLE_CHARS = 300


@dataclass
class Document:
    """One unit of text: a whole .txt file, one JSONL record, one stdlib module."""

    text: str
    id: str
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)
    # derived values steps share (e.g. word tokens), valid while `text` is the same object
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def example_of(doc: Document) -> dict[str, str]:
    """A short record of a removed document: its id and the start of its text."""
    text = doc.text if len(doc.text) <= EXAMPLE_CHARS else doc.text[:EXAMPLE_CHARS] + "…"
    return {"id": doc.id, "text": text}


class Step:
    """Base step: subclasses set `name` and implement `process` (return None to drop).

    Besides documents in/out it counts UTF-8 bytes in/out and keeps the first
    `EXAMPLES_PER_REASON` removed documents of each reason (`examples`).
    """

    name = "step"

    def __init__(self) -> None:
        self.stats: Counter[str] = Counter()
        self.examples: dict[str, list[dict[str, str]]] = {}
        self._current: Document | None = None

    def process(self, doc: Document) -> Document | None:
        raise NotImplementedError

    def drop(self, reason: str) -> None:
        """Count one removed document under `removed_<reason>`; `process` then returns None."""
        self.stats[f"removed_{reason}"] += 1
        if self._current is not None:
            self.add_example(reason, self._current)

    def add_example(self, reason: str, doc: Document) -> None:
        kept = self.examples.setdefault(reason, [])
        if len(kept) < EXAMPLES_PER_REASON:
            kept.append(example_of(doc))

    def __call__(self, docs: Iterable[Document]) -> Iterator[Document]:
        for doc in docs:
            text = doc.text
            size = len(text.encode("utf-8"))
            self.stats["documents_in"] += 1
            self.stats["bytes_in"] += size
            self._current = doc
            out = self.process(doc)
            self._current = None
            if out is not None:
                self.stats["documents_out"] += 1
                same = out.text is text
                self.stats["bytes_out"] += size if same else len(out.text.encode("utf-8"))
                yield out

    def checkpoint(self, generation: int) -> None:
        """Make what the step holds on disk durable up to here, as checkpoint number
        `generation` (see `clean_pass`); a no-op for steps that keep nothing but counts."""

    def close(self, remove: bool = True) -> None:
        """Release what the step holds on disk (files, databases), deleting it unless
        `remove` is False (a failed run keeps it for --resume); a no-op for most steps."""

    def state(self) -> dict[str, Any]:
        """Counts and examples, as JSON (a checkpoint)."""
        return {"stats": dict(self.stats), "examples": self.examples}

    def restore(self, state: dict[str, Any]) -> None:
        self.stats = Counter(state["stats"])
        self.examples = state["examples"]

    def report(self) -> dict[str, int]:
        return dict(sorted(self.stats.items()))


class Problems:
    """Bad files, records and rows: raise a DataError with the fix, or (skip_bad=True) record
    and go on. Each carries where it is (path, path:line or path@byte) and the input bytes it
    cost (`lost`): per-file lost bytes are kept for the report (`lost_bytes`)."""

    def __init__(self, skip_bad: bool) -> None:
        self.skip_bad = skip_bad
        self.counts: Counter[str] = Counter()
        self.items: list[dict[str, Any]] = []
        self.lost: Counter[str] = Counter()  # file -> input bytes that reached no document

    def bad(
        self, where: str, kind: str, detail: str, fix: str, *, file: str = "", lost: int = 0
    ) -> None:
        """Report a bad input at `where` (path, path:line) of category `kind`; `lost` input
        bytes of `file` (default `where`) reached no document."""
        if not self.skip_bad:
            raise DataError(
                f"{where}: {detail}. {fix}, or pass --skip-bad-files to skip such inputs "
                "and list them in report.json"
            )
        self.counts[kind] += 1
        self.lost[file or where] += lost
        if len(self.items) < MAX_RECORDED_PROBLEMS:
            self.items.append({"where": where, "kind": kind, "detail": detail, "lost_bytes": lost})

    def state(self) -> dict[str, Any]:
        """Counts, recorded items and lost bytes, as JSON (a checkpoint)."""
        return {"counts": dict(self.counts), "items": self.items, "lost": dict(self.lost)}

    def restore(self, state: dict[str, Any]) -> None:
        self.counts, self.items = Counter(state["counts"]), list(state["items"])
        self.lost = Counter(state.get("lost", {}))

    def report(self) -> dict[str, Any]:
        shown = len(self.items)
        total = sum(self.counts.values())
        worst = sorted(self.lost.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_RECORDED_PROBLEMS]
        return {
            "counts": dict(sorted(self.counts.items())),
            "items": self.items,
            "items_truncated": total > shown,
            "lost_bytes": sum(self.lost.values()),
            "lost_bytes_by_file": dict(worst),
        }
