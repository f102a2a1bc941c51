"""`--keep-text`: the cleaned, deduplicated documents as `documents.jsonl` in DATA_DIR.

Pass 1 writes one JSON line per surviving document beside the spool (`KeptTextWriter`);
near duplicates are dropped from it together with the spool, and once the split is known
`finish_kept_text` rewrites it with each document's split. A line is {"id", "source", "split", "text",
"annotations"}: `id` is the input document's own `id` field when it has one, else
"file:line" (JSONL), "file" (text files) or the record's place in a CSV / Parquet / WARC file;
`annotations` holds what the steps recorded (language, script, contamination, place).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from llmtrain.data.prepare.documents import Document
from llmtrain.data.prepare.spool import open_at

KEPT_TEXT_FILE = "documents.jsonl"


class KeptTextWriter:
    """JSON lines to `path`; `resume_bytes` goes on after that many bytes (a checkpoint)."""

    def __init__(self, path: Path, resume_bytes: int | None = None) -> None:
        self.path = path
        self._f = open_at(path, resume_bytes)

    def write(self, doc: Document) -> None:
        record = {"id": doc.id, "source": doc.source, "text": doc.text,
                  "annotations": {k: v for k, v in sorted(doc.metadata.items())}}  # fmt: skip
        self.write_line((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))

    def write_line(self, line: bytes) -> None:
        self._f.write(line)

    def size(self) -> int:
        self._f.flush()
        return self._f.tell()

    def __enter__(self) -> KeptTextWriter:
        return self

    def __exit__(self, et: type | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._f.close()


def finish_kept_text(tmp: Path, out: Path, splits: Iterable[str]) -> int:
    """Write `out` from `tmp` with each document's split; remove `tmp`."""
    split_of = iter(splits)
    written = 0
    part = out.with_suffix(".jsonl.part")
    with open(tmp, encoding="utf-8") as src, open(part, "w", encoding="utf-8") as dst:
        for line in src:
            record = json.loads(line)
            record = {"id": record["id"], "source": record["source"], "split": next(split_of),
                      "text": record["text"], "annotations": record["annotations"]}  # fmt: skip
            dst.write(json.dumps(record, ensure_ascii=False) + "\n")
            written += 1
    part.replace(out)
    tmp.unlink()
    return written
