"""A temporary on-disk stream of the cleaned documents between the two pipeline passes.

Pass 1 (read → normalise → filter → dedup) writes each kept document once; the tokenizer
then trains on it and pass 2 packs it, so the corpus is never held in memory. Each record is
a little-endian header (split score uint64, byte length uint64) followed by the UTF-8 text.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

_HEADER = struct.Struct("<QQ")


class SpoolWriter:
    """Appends records to `path`; `resume_bytes` goes on after that many bytes of an existing
    spool (a checkpoint's `size()`), cutting off what a crash left after them."""

    def __init__(self, path: Path, resume_bytes: int | None = None) -> None:
        self.path = path
        self._f = open_at(path, resume_bytes)
        self.documents = 0

    def write(self, score: int, text: str) -> None:
        data = text.encode("utf-8")
        self._f.write(_HEADER.pack(score, len(data)))
        self._f.write(data)
        self.documents += 1

    def size(self) -> int:
        """Bytes written so far, flushed to the file (a checkpoint)."""
        self._f.flush()
        return self._f.tell()

    def __enter__(self) -> SpoolWriter:
        return self

    def __exit__(self, et: type | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._f.close()


def open_at(path: Path, resume_bytes: int | None) -> BinaryIO:
    """`path` opened for writing: emptied, or cut to `resume_bytes` and positioned there."""
    if resume_bytes is None:
        return open(path, "wb")  # noqa: SIM115 (the caller closes it)
    f = open(path, "r+b")  # noqa: SIM115
    f.truncate(resume_bytes)
    f.seek(resume_bytes)
    return f


def read_spool(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (score, text) for every spooled document, in write order."""
    for _, score, text in read_spool_from(path):
        yield score, text


def read_spool_from(path: Path, start: int = 0) -> Iterator[tuple[int, int, str]]:
    """Yield (byte offset just past the record, score, text) for every record from byte
    `start` (a record boundary: 0 or an offset this yielded) on."""
    with open(path, "rb", buffering=1 << 20) as f:
        f.seek(start)
        while header := f.read(_HEADER.size):
            score, size = _HEADER.unpack(header)
            start += _HEADER.size + size
            yield start, score, f.read(size).decode("utf-8")
