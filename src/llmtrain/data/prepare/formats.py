"""Container formats beyond plain text and JSON lines: compression, CSV, Parquet, Arrow (a
Hugging Face dataset saved with `save_to_disk`), HTML and WARC.

Each `iter_*` function yields `(where, text, id)` records and raises `FormatError` (with a
reason) when the file itself is unreadable; the `Reader` turns that into a reported bad input.
pyarrow, trafilatura, warcio and zstandard are imported only when such a file is read.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
from collections.abc import Iterator
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
STREAM_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, ValueError)

Record = tuple[str, str, "str | None"]  # (where, text, id or None)


class FormatError(Exception):
    """The file cannot be read as its suffix says; str(e) is the reason shown to the user."""


def open_binary(path: Path) -> IO[bytes]:
    """`path` opened for reading bytes, decompressing .gz/.bz2/.zst transparently."""
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return gzip.open(path, "rb")
    if suffix == ".bz2":
        return bz2.open(path, "rb")
    if suffix in (".zst", ".zstd"):
        import zstandard

        # BufferedReader adds the line iteration the JSONL reader needs
        return io.BufferedReader(zstandard.open(path, "rb"))  # type: ignore[arg-type]
    return open(path, "rb")  # noqa: SIM115 (the caller closes it)


def iter_csv(path: Path, column: str) -> Iterator[Record]:
    """One record per row of a CSV (or TSV) file with a header row; `column` holds the text."""
    delimiter = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
    with open_binary(path) as raw:
        stream = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        reader = csv.DictReader(stream, delimiter=delimiter)
        try:
            header = reader.fieldnames or []
        except UnicodeDecodeError as e:
            raise FormatError(f"invalid UTF-8 in the header: {e.reason}") from None
        if column not in header:
            raise FormatError(
                f"no column {column!r} (columns: {', '.join(map(repr, header[:20])) or 'none'}); "
                "pass --text-field NAME naming the text column"
            )
        has_id = "id" in header
        try:
            for row in reader:
                text = row.get(column)
                if text:
                    yield f"{path}:{reader.line_num}", text, row["id"] if has_id else None
        except (UnicodeDecodeError, csv.Error) as e:
            raise FormatError(f"unreadable at line {reader.line_num}: {e}") from None


def _table_batches(path: Path) -> Iterator:
    """Record batches of a Parquet file or an Arrow IPC stream/file (HF `save_to_disk`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

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
        raise FormatError(f"not a readable {path.suffix} table: {e}") from None


def iter_table(path: Path, column: str) -> Iterator[Record]:
    """One record per row of a Parquet / Arrow table, streamed a batch at a time."""
    row = 0
    for batch in _table_batches(path):
        names = batch.schema.names
        if column not in names:
            raise FormatError(
                f"no column {column!r} (columns: {', '.join(map(repr, names[:20]))}); "
                "pass --text-field NAME naming the text column"
            )
        texts = batch.column(column).to_pylist()
        ids = batch.column("id").to_pylist() if "id" in names else [None] * len(texts)
        for text, doc_id in zip(texts, ids):
            if isinstance(text, str) and text:
                yield f"{path}[{row}]", text, None if doc_id is None else str(doc_id)
            row += 1


def html_to_text(html: str | bytes) -> str | None:
    """Main text of an HTML page with boilerplate (menus, footers, ads) removed, or None."""
    import trafilatura

    return trafilatura.extract(html, include_comments=False, include_tables=True, fast=True)


def iter_html(path: Path) -> Iterator[Record]:
    with open_binary(path) as f:
        data = f.read()
    text = html_to_text(data)
    if text:
        yield str(path), text, None


def iter_warc(path: Path) -> Iterator[Record]:
    """Text of every HTML response (extracted) and plain-text conversion record (WET) in a WARC."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    with open_binary(path) as head:
        if head.read(5) not in (b"WARC/", b"filed"):  # WARC record or ARC file header
            raise FormatError("not a WARC archive (it does not start with a WARC/ header)")
    with open(path, "rb") as stream:  # warcio decompresses per record itself
        try:
            for i, record in enumerate(ArchiveIterator(stream)):
                uri = record.rec_headers.get_header("WARC-Target-URI") or f"{path}#{i}"
                if record.rec_type == "conversion":
                    text = record.content_stream().read().decode("utf-8", errors="replace")
                elif record.rec_type == "response" and _is_html(record):
                    text = html_to_text(record.content_stream().read())
                else:
                    continue
                if text:
                    yield f"{path}#{i}", text, uri
        except ArchiveLoadFailed as e:
            raise FormatError(f"not a readable WARC archive: {e}") from None


def _is_html(record) -> bool:
    content_type = record.http_headers.get_header("Content-Type") if record.http_headers else ""
    return "html" in (content_type or "").lower()
