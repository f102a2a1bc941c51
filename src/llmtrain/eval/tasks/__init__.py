"""Multiple-choice tasks read from local files: `load_task(path, fmt="auto", limit=None)`.

Formats: arc, piqa, hellaswag, mc (see `readers`); `auto` picks one from the first row's
fields. A `Task` holds its items and the format they came from; nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmtrain.errors import DataError
from llmtrain.eval.tasks.readers import (
    READERS,
    MCItem,
    RowError,
    check_item,
    detect_format,
    iter_jsonl,
    piqa_item,
    piqa_labels,
)

FORMATS = ("auto", "arc", "piqa", "hellaswag", "mc")


@dataclass
class Task:
    name: str  # the file's stem ("ARC-Easy-Dev") or the folder's name ("piqa")
    path: Path
    format: str
    items: list[MCItem]

    @property
    def chance(self) -> float:
        """Expected accuracy of a uniform random guess: the mean of 1 / (number of choices)."""
        return sum(1 / len(it.choices) for it in self.items) / max(1, len(self.items))


def _resolve(path: Path) -> Path:
    """A folder with exactly one .jsonl (e.g. the PIQA folder) stands for that file."""
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if len(files) != 1:
            raise DataError(
                f"task folder {path} holds {len(files)} .jsonl files; name the file to score"
            )
        return files[0]
    if not path.is_file():
        raise DataError(f"task file {path} does not exist; pass a JSONL task file")
    return path


def load_task(path: str | Path, fmt: str = "auto", limit: int | None = None) -> Task:
    """Read up to `limit` items of the task file at `path` (a JSONL file or a folder with one)."""
    if fmt not in FORMATS:
        raise DataError(f"unknown task format {fmt!r}; choose one of {', '.join(FORMATS)}")
    name = Path(path).name if Path(path).is_dir() else Path(path).stem
    path = _resolve(Path(path))
    labels = piqa_labels(path) if fmt == "piqa" else None
    items: list[MCItem] = []
    for n, row in iter_jsonl(path):
        if fmt == "auto":
            fmt = detect_format(row) or _unknown(path, n, row)
            if fmt == "piqa":
                labels = piqa_labels(path)
        if limit is not None and len(items) >= limit:
            break
        try:
            if fmt == "piqa":
                label = None if labels is None else _label(labels, len(items), path)
                item = piqa_item(row, label)
            else:
                item = READERS[fmt](row)
            items.append(check_item(item))
        except RowError as e:
            raise DataError(f"{path}:{n}: {e} ({fmt} format)") from None
    if fmt == "piqa" and labels is not None and limit is None and len(labels) != len(items):
        raise DataError(
            f"{path}: {len(items)} rows but {len(labels)} labels in the -labels.lst file; "
            "the two files must have one line per question"
        )
    if not items:
        raise DataError(f"task file {path} has no rows; add at least one question")
    return Task(name, path, fmt, items)


def _label(labels: list[int], i: int, path: Path) -> int:
    if i >= len(labels):
        raise RowError(f"no label for this row: the -labels.lst file has {len(labels)} lines")
    return labels[i]


def _unknown(path: Path, n: int, row: dict) -> str:
    keys = ", ".join(list(row)[:6])
    raise DataError(
        f"{path}:{n}: unknown task format (fields: {keys}); write rows as "
        '{"query", "choices", "gold"} or pass --format arc|piqa|hellaswag|mc'
    )


__all__ = ["FORMATS", "MCItem", "Task", "load_task"]
