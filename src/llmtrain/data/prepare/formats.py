"""Container formats beyond plain text and JSON lines: compression, Parquet, Arrow (a Hugging
Face dataset saved with `save_to_disk`), HTML and WARC (CSV is in `csvread`).

Each `iter_*` function yields `Record`s (where, text, id) and `Bad`s (a record it cannot use,
with the input bytes it cost) and raises `FormatError` when the file itself is unreadable; the
`Reader` counts both. Compressed files are checked against their magic bytes and a stream cut
short raises `EOFError`. pyarrow, trafilatura, warcio and zstandard are imported only when
such a file is read.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import os
import re
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

COMPRESSIONS = (".gz", ".bz2", ".zst", ".zstd")
CSV_SUFFIXES = (".csv", ".tsv")
TABLE_SUFFIXES = (".parquet", ".arrow")
HTML_SUFFIXES = (".html", ".htm", ".xhtml")
WARC_SUFFIXES = (".warc", ".arc")
# Files `datasets.Dataset.save_to_disk` writes beside its .arrow shards: metadata, not text.
HF_METADATA_FILES = ("dataset_info.json", "state.json", "dataset_dict.json")
# Errors a truncated/corrupt compressed stream raises while it is being read.
STREAM_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, ValueError, zlib.error)
MAX_RECORD_BYTES = 32 << 20  # a line / row / page / JSON value larger than this is refused
_MAGIC = {
    ".gz": b"\x1f\x8b",
    ".bz2": b"BZh",
    ".zst": b"\x28\xb5\x2f\xfd",
    ".zstd": b"\x28\xb5\x2f\xfd",
}
FIELD_FIX = "Pass --text-field NAME naming the column that holds the text"
_ZSTD_IN = 1 << 10  # compressed bytes per zstd call: bounds one call's output to ~32 MiB


@dataclass
class Record:
    where: str
    text: str
    id: str | None = None


@dataclass
class Bad:
    """A record that cannot be used: where, a `Problems` kind, the detail, fix and bytes lost."""

    where: str
    kind: str
    detail: str
    fix: str
    lost: int = 0
    file: str = ""  # the file it belongs to when not the one being read (a zip member)


class FormatError(Exception):
    """The file cannot be read as its suffix says; str(e) is the reason shown to the user."""

    def __init__(
        self, detail: str, kind: str = "unreadable_file", fix: str = "Fix or remove the file"
    ) -> None:
        super().__init__(detail)
        self.kind, self.fix = kind, fix


def printable(data: bytes | str, limit: int = 80) -> str:
    """`data` safe for a terminal: non-printable characters escaped, at most `limit` chars."""
    text = data.decode("utf-8", "backslashreplace") if isinstance(data, bytes) else data
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[:limit] + "…"


def open_regular(path: Path) -> IO[bytes]:
    """`path` opened for reading bytes; FormatError unless it is a regular file (a FIFO or
    device is never opened in a blocking way, so it cannot hang the run)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except PermissionError:
        raise FormatError(
            "permission denied", "permission_denied", "Make it readable (e.g. chmod a+r)"
        ) from None
    except OSError as e:
        raise FormatError(f"cannot be opened ({e.strerror})", "unreadable_path") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise FormatError("is not a regular file (a FIFO, device or socket)", "not_regular_file",
                          "Point prepare at regular files")  # fmt: skip
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return open(fd, "rb")  # noqa: SIM115 (the caller closes it)


def open_binary(path: Path) -> IO[bytes]:
    """`path` opened for reading bytes, decompressing .gz/.bz2/.zst transparently; FormatError
    when the content is not what the compression suffix says."""
    suffix = path.suffix.lower()
    f = open_regular(path)
    if suffix not in _MAGIC:
        return f
    head = f.read(4)
    f.seek(0)
    if not head.startswith(_MAGIC[suffix]):
        f.close()
        actual = next((s for s, m in _MAGIC.items() if m and head.startswith(m)), None)
        hint = f"; it looks like {actual} data: rename it" if actual else ""
        raise FormatError(f"is not {suffix} data (wrong magic bytes{hint})", "not_compressed",
                          "Fix the name or re-compress the file")  # fmt: skip
    if suffix == ".gz":
        return gzip.open(f, "rb")  # type: ignore[return-value]
    if suffix == ".bz2":
        return bz2.open(f, "rb")  # type: ignore[return-value]
    return io.BufferedReader(_ZstdRaw(f), 1 << 16)


class _ZstdRaw(io.RawIOBase):
    """A zstd stream (one or more frames) that raises EOFError when it ends inside a frame
    (zstandard's own reader just stops there) and bounds the output of one read."""

    def __init__(self, f: IO[bytes]) -> None:
        import zstandard

        self._f, self._zstd = f, zstandard
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._buf, self._pos, self._in_frame = b"", 0, False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        while self._pos >= len(self._buf):
            chunk = self._f.read(_ZSTD_IN)
            if not chunk:
                if self._in_frame:
                    raise EOFError("the zstd stream ends inside a frame: the file is truncated")
                return 0
            self._buf, self._pos = self._decompress(chunk), 0
        n = min(len(b), len(self._buf) - self._pos)
        b[:n] = self._buf[self._pos : self._pos + n]
        self._pos += n
        return n

    def _decompress(self, chunk: bytes) -> bytes:
        out = []
        while chunk:
            try:
                out.append(self._obj.decompress(chunk))
            except self._zstd.ZstdError as e:
                raise ValueError(f"corrupt zstd data: {e}") from None
            self._in_frame = not self._obj.eof
            chunk = self._obj.unused_data if self._obj.eof else b""
            if self._obj.eof:
                self._obj = self._dctx.decompressobj()
        return b"".join(out)

    def close(self) -> None:
        self._f.close()
        super().close()


def _table_batches(path: Path) -> Iterator:
    """Record batches of a Parquet file or an Arrow IPC stream/file (HF `save_to_disk`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    open_regular(path).close()  # a FIFO or unreadable file is named, not waited on
    try:
        if path.suffix.lower() == ".parquet":
            yield from pq.ParquetFile(path).iter_batches(batch_size=1024)
            return
        try:
            reader = pa.ipc.open_stream(pa.memory_map(str(path)))
            yield from reader
        except pa.ArrowInvalid:
            file_reader = pa.ipc.open_file(pa.memory_map(str(path)))
            for i in range(file_reader.num_record_batches):
                yield file_reader.get_batch(i)
    except (pa.ArrowException, OSError) as e:
        raise FormatError(f"not a readable {path.suffix} table: {printable(str(e), 200)}") from None


def iter_table(path: Path, column: str, name: str) -> Iterator[Record | Bad]:
    """One record per row of a Parquet / Arrow table, streamed a batch at a time; a null
    cell is an empty document, a cell that is not a string a `Bad` row."""
    import pyarrow as pa

    row = 0
    for batch in _table_batches(path):
        names = batch.schema.names
        if column not in names:
            raise FormatError(
                f"no column {column!r} (columns: {', '.join(map(repr, names[:20]))})",
                "missing_text_field",
                FIELD_FIX,
            )  # fmt: skip
        col = batch.column(column)
        is_text = pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
        texts = col.to_pylist()
        ids = batch.column("id").to_pylist() if "id" in names else [None] * len(texts)
        for text, doc_id in zip(texts, ids):
            where = f"{name}[{row}]"
            row += 1
            if text is None or is_text:
                yield Record(where, text or "", None if doc_id is None else str(doc_id))
            else:
                yield Bad(where, "text_field_not_string",
                          f"column {column!r} holds {col.type}, not text",
                          "Pass --text-field naming a string column", len(str(text)))  # fmt: skip


def html_to_text(html: str | bytes) -> str | None:
    """Main text of an HTML page with boilerplate (menus, footers, ads) removed, or None."""
    import trafilatura

    try:
        return trafilatura.extract(html, include_comments=False, include_tables=True, fast=True)
    except RecursionError:  # a page nested beyond the parser's depth
        return None


def iter_html(f: IO[bytes], name: str) -> Iterator[Record | Bad]:
    """One page: its extracted text (an empty document when it has none)."""
    data = f.read(MAX_RECORD_BYTES + 1)
    if len(data) > MAX_RECORD_BYTES:
        raise FormatError(f"an HTML page over {MAX_RECORD_BYTES >> 20} MiB", "record_too_large")
    if b"\x00" in data[:65536]:
        raise FormatError("looks like a binary file (it contains NUL bytes), not HTML",
                          "binary_file", "Remove it from the inputs")  # fmt: skip
    yield Record(name, html_to_text(data) or "")


_WARC_WARNING = re.compile(r"Offset: (\d+)")


def iter_warc(path: Path, name: str) -> Iterator[Record | Bad]:
    """Text of every HTML response (extracted) and plain-text conversion record (WET) in a WARC;
    a record whose Content-Length is wrong, or bytes after the last whole record (a file cut
    short or a corrupt member), are `Bad`s."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    with open_binary(path) as head:
        if head.read(5) not in (b"WARC/", b"filed"):  # WARC record or ARC file header
            raise FormatError("not a WARC archive (it does not start with a WARC/ header)")
    with open_regular(path) as stream:  # warcio decompresses per record itself
        size = os.fstat(stream.fileno()).st_size
        warnings = io.StringIO()
        it = ArchiveIterator(stream)
        i, consumed = -1, 0
        try:
            while True:
                with contextlib.redirect_stderr(warnings):  # warcio prints raw bytes there
                    record = next(it, None)
                if record is None:
                    break
                i += 1
                item = _warc_record(record, f"{name}#{i}")
                with contextlib.redirect_stderr(warnings):
                    it.read_to_end()  # the rest of the record: a cut one leaves a limit
                cut = record.length is None or getattr(record.raw_stream, "limit", 0) > 0
                start, consumed = consumed, it.offset
                if cut:
                    item = Bad(f"{name}@{start}", "truncated_record", f"record {i} (at byte "
                               f"{start}) is cut short: the archive is truncated or corrupt",
                               "Re-download the archive", max(consumed - start, 1))  # fmt: skip
                if item is not None:
                    yield item
                yield from _bad_lengths(warnings, f"{name}#{i}", record.length or 0)
        except ArchiveLoadFailed as e:
            detail = f"record {i + 1} at byte {consumed}: not a readable WARC record ({printable(str(e))})"
            yield Bad(f"{name}@{consumed}", "truncated_record", detail,
                      "Re-download the archive", size - consumed)  # fmt: skip
            return
    if _has_more(path, consumed):
        yield Bad(f"{name}@{consumed}", "truncated_record",
                  f"{size - consumed:,} bytes after the last whole record (at byte {consumed}) "
                  "cannot be read: the archive is cut short or corrupt",
                  "Re-download the archive", size - consumed)  # fmt: skip


def _has_more(path: Path, offset: int) -> bool:
    """Whether `path` holds more than blank lines after byte `offset`."""
    with open_regular(path) as f:
        f.seek(offset)
        while chunk := f.read(1 << 16):
            if chunk.strip():
                return True
    return False


def _warc_record(record, where: str) -> Record | None:  # type: ignore[no-untyped-def]
    """The text of a WET conversion or HTML response record; None for other records."""
    uri = record.rec_headers.get_header("WARC-Target-URI") or where
    if record.rec_type == "conversion":
        body = record.content_stream().read(MAX_RECORD_BYTES)
        return Record(where, body.decode("utf-8", errors="replace"), uri)
    if record.rec_type == "response" and _is_html(record):
        body = record.content_stream().read(MAX_RECORD_BYTES)
        return Record(where, html_to_text(body) or "", uri)
    return None


def _bad_lengths(warnings: io.StringIO, where: str, length: int) -> Iterator[Bad]:
    """A `Bad` for each record warcio found not where the previous Content-Length said."""
    for offset in _WARC_WARNING.findall(warnings.getvalue()):
        yield Bad(f"{where}@{offset}", "warc_bad_length",
                  f"the record ends elsewhere than its Content-Length ({length:,}) says (next "
                  "record expected at byte " + offset + "); records it overlaps may be lost",
                  "Re-download or repair the archive", max(length, 1))  # fmt: skip
    warnings.seek(0)
    warnings.truncate()


def _is_html(record) -> bool:  # type: ignore[no-untyped-def]
    content_type = record.http_headers.get_header("Content-Type") if record.http_headers else ""
    return "html" in (content_type or "").lower()
