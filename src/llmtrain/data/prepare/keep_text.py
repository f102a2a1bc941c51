"""`--keep-text`: the cleaned, deduplicated documents as `documents.jsonl` in DATA_DIR.

Pass 1 writes one JSON line per surviving document beside the spool (`KeptTextWriter`);
once near duplicates and the split are known, `finish_kept_text` rewrites it without the
near duplicates, adding each document's split. A line is {"id", "source", "split", "text",
"annotations"}: `id` is the input document's own `id` field when it has one, else
"file:line" (JSONL), "file" (text files) or the record's place in a CSV / Parquet / WARC file;
`annotations` holds what the steps recorded (language, script, contamination, place).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import numpy as np

from llmtrain.data.prepare.documents import Document

KEPT_TEXT_FILE = "documents.jsonl"


class KeptTextWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._f = open(path, "w", encoding="utf-8")  # noqa: SIM115 (closed in __exit__)

    def write(self, doc: Document) -> None:
        record = {"id": doc.id, "source": doc.source, "text": doc.text,
                  "annotations": {k: v for k, v in sorted(doc.metadata.items())}}  # fmt: skip
        self._f.write(json.dumps(record, ensure_ascii=False) + "\n")

    def __enter__(self) -> KeptTextWriter:
        return self

    def __exit__(self, et: type | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._f.close()


def finish_kept_text(
    tmp: Path, out: Path, dropped: np.ndarray | None, splits: Iterable[str]
) -> int:
    """Write `out` from `tmp` minus `dropped` documents, with their splits; remove `tmp`."""
    split_of = iter(splits)
    written = 0
    part = out.with_suffix(".jsonl.part")
    with open(tmp, encoding="utf-8") as src, open(part, "w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if dropped is not None and dropped[i]:
                continue
            record = json.loads(line)
            record = {"id": record["id"], "source": record["source"], "split": next(split_of),
                      "text": record["text"], "annotations": record["annotations"]}  # fmt: skip
            dst.write(json.dumps(record, ensure_ascii=False) + "\n")
            written += 1
    part.replace(out)
    tmp.unlink()
    return written
