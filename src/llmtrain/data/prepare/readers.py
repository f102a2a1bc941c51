"""Readers: input paths → `Document`s.

`plan_inputs` (in `inputs`) lists the files; `Reader` streams documents from them, never
holding more than one bounded piece of a file: a text file is one document (a file over
`MAX_DOCUMENT_BYTES` is cut into several, at paragraph breaks); a JSON-lines file is one
document per line (`text_field`, dotted for nested fields) and a .json file one per array item
or top-level value (`jsonread`); CSV rows (`csvread`), Parquet / Arrow rows, HTML pages and
WARC responses come from `formats`; a .zip archive is read like a folder; `.gz`, `.bz2` and
`.zst` are read transparently. Every file, line, row or record that cannot be used goes to
`Problems` with where it is and the bytes it cost (the run stops with the fix, or with
--skip-bad-files it is recorded and skipped); a record with no text is an empty document, so
`documents read = kept + removed`. A file cut short keeps the documents read before the cut.
`Reader.position` says where the next document comes from; a `Reader` given that position as
`start` goes on from there (text and JSONL files from a byte offset, other records by count).
"""

from __future__ import annotations

import codecs
import io
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

# a module import (not `from ... import`): builtin.py imports Document from this package
import llmtrain.data.builtin as builtin
from llmtrain.data.prepare import formats
from llmtrain.data.prepare.csvread import iter_csv
from llmtrain.data.prepare.documents import Document, Problems
from llmtrain.data.prepare.formats import Bad, FormatError, Record
from llmtrain.data.prepare.inputs import (  # noqa: F401 (re-exported)
    BINARY_SUFFIXES,
    BUILTIN_PREFIX,
    JSONL_SUFFIXES,
    SUPPORTED_SUFFIXES,
    TEXT_SUFFIXES,
    InputPlan,
    base_suffix,
    name_of,
    plan_inputs,
)
from llmtrain.data.prepare.jsonread import get_field, iter_values, line_item, read_line  # noqa: F401
from llmtrain.data.prepare.sniff import BINARY_FIX, BINARY_SAMPLE, binary_reason, utf8_fix

# a text file larger than this is read as several documents: each is held in a few copies
# (bytes, text, normalised text, spool record) on its way through the clean and pack passes;
# a 64 MiB one-line file peaked at 311 MiB RSS with 16 MiB documents, 161 MiB with 4 MiB
MAX_DOCUMENT_BYTES = 4 << 20
REST = -1  # a `Bad`'s lost bytes: the rest of the file (from where it stopped)
_NOT_TEXT = object()  # a file of unknown type that is not UTF-8 text: ignored, counted
_NOT_IN_ZIP = (*BINARY_SUFFIXES, ".zip", *formats.TABLE_SUFFIXES, *formats.WARC_SUFFIXES)


@dataclass
class ReadPosition:
    """A place in the input stream: `source` indexes builtins then files; within it,
    `records` documents/records were read (or, for a text or JSONL file, `lines` lines
    ending at byte `offset` of its decompressed stream)."""

    source: int = 0
    records: int = 0
    offset: int = 0
    lines: int = 0


def _skip_bytes(f: IO[bytes], offset: int) -> None:
    """Move `f` to byte `offset` (seek a plain file; read past it in a compressed one)."""
    if isinstance(f, io.BufferedReader) and isinstance(f.raw, io.FileIO):
        f.seek(offset)
        return
    while offset > 0:
        chunk = f.read(min(offset, 1 << 20))
        if not chunk:
            return
        offset -= len(chunk)


def _cut(data: bytes) -> int:
    """Where to end a piece of a long text: after the last paragraph break, else line break,
    else space (in its second half), else before its last UTF-8 character."""
    for sep in (b"\n\n", b"\n", b" "):
        at = data.rfind(sep, len(data) // 2)
        if at >= 0:
            return at + len(sep)
    back = len(data) - 1
    while back > len(data) - 4 and back > 0 and (data[back] & 0xC0) == 0x80:
        back -= 1
    return back if data[back] >= 0xC0 else len(data)


def text_items(
    f: IO[bytes], name: str, at: ReadPosition, sniffed: bool = False
) -> Iterator[Record | Bad | object]:
    """A text stream as documents of at most `MAX_DOCUMENT_BYTES`; `at` (offset, lines,
    records) moves past each. `_NOT_TEXT` when `sniffed` and it does not start as text."""
    carry, first = b"", at.offset == 0
    while True:
        want = MAX_DOCUMENT_BYTES - len(carry)
        block = f.read(want)
        data, last = carry + block, len(block) < want
        if not data:
            if first:  # an empty file: an empty document (counted when it is removed)
                at.records += 1
                yield Record(name, "")
            return
        if first:
            first, reason = False, binary_reason(data[:BINARY_SAMPLE])
            if reason is not None:
                yield _NOT_TEXT if sniffed else Bad(name, "binary_file", reason, BINARY_FIX, REST)  # fmt: skip
                return
        cut = len(data) if last else _cut(data)
        piece, carry = data[:cut], data[cut:]
        where = f"{name}@{at.offset}" if at.offset else name
        if b"\x00" in piece:
            nul = at.offset + piece.index(b"\x00")
            yield Bad(where, "binary_file", f"a NUL byte at byte offset {nul}: a binary file, "
                      "not text", BINARY_FIX, REST)  # fmt: skip
            return
        try:
            text = codecs.decode(piece, "utf-8")
        except UnicodeDecodeError as e:
            if sniffed and at.offset == 0 and e.start < BINARY_SAMPLE:
                yield _NOT_TEXT
                return
            line = at.lines + piece.count(b"\n", 0, e.start) + 1
            detail = f"invalid UTF-8 at byte offset {at.offset + e.start} (line {line}): {e.reason}"
            around = piece[max(0, e.start - BINARY_SAMPLE // 2) : e.start + BINARY_SAMPLE // 2]
            yield Bad(where, "invalid_utf8_file", detail, utf8_fix(around), REST)
            return
        at.offset += len(piece)
        at.lines += piece.count(b"\n")
        at.records += 1
        yield Record(name if at.records == 1 else f"{name}#{at.records - 1}", text)
        if last:
            return


def jsonl_items(
    f: IO[bytes], name: str, field: str, at: ReadPosition,
    count: Callable[[int], None] = lambda n: None,
) -> Iterator[Record | Bad]:  # fmt: skip
    """JSON lines; `at` (offset, lines) moves past each line, `count`ing its bytes."""
    while True:
        raw, size = read_line(f)
        if not size:
            return
        count(size)
        at.offset += size
        at.lines += 1
        item = line_item(raw, size, f"{name}:{at.lines}", field, at.lines == 1)
        if item is not None:
            yield item


class Reader:
    """The `read` step: streams Documents from an `InputPlan`, counting files, bytes and bad input."""

    name = "read"

    def __init__(
        self,
        plan: InputPlan,
        text_field: str,
        problems: Problems,
        on_bytes: Callable[[int], None] = lambda n: None,
        start: ReadPosition | None = None,
    ) -> None:
        self.plan, self.text_field, self.problems = plan, text_field, problems
        self.on_bytes = on_bytes
        self.stats: Counter[str] = Counter()
        self.fresh = start is None  # not a resume: report what the plan could not look at
        self.start = start or ReadPosition()
        self.position = ReadPosition(self.start.source)

    def _resuming(self, source: int) -> ReadPosition | None:
        """The start position when `source` is the one to resume inside (counted already)."""
        start = self.start
        return start if source == start.source and (start.records or start.lines) else None

    def __iter__(self) -> Iterator[Document]:
        if self.fresh:
            for item in self.plan.skipped:
                self.problems.bad(item["where"], item["kind"], item["detail"], item["fix"])
        yield from self._builtins()
        for i, path in enumerate(self.plan.files, len(self.plan.builtins)):
            if i < self.start.source:
                continue
            self.position = ReadPosition(i)
            yield from self._file(path, self._resuming(i))
        self.position = ReadPosition(len(self.plan.builtins) + len(self.plan.files))

    def _builtins(self) -> Iterator[Document]:
        for i, name in enumerate(self.plan.builtins):
            if i < self.start.source:
                continue
            self.position = ReadPosition(i)
            resume = self._resuming(i)
            skip = resume.records if resume else 0
            for doc in builtin.builtin_corpus_documents(name):
                self.position.records += 1
                if self.position.records <= skip:
                    continue
                size = len(doc.text.encode("utf-8"))
                self.stats["bytes_read"] += size
                self.stats["documents_read"] += 1
                self.on_bytes(size)
                yield doc
            self.stats["builtin_corpora_read"] += 1

    def _file(self, path: Path, resume: ReadPosition | None) -> Iterator[Document]:
        """The documents of one file; its problems reported, its bytes counted."""
        name, size = name_of(path), _size(path)
        streamed = _streamed(path)  # counted as read (JSONL lines), else counted here
        if resume is None and streamed != "jsonl":  # a resumed file was counted before
            self.on_bytes(size)
            if not streamed:
                self.stats["bytes_read"] += size
        docs = 0
        try:
            for item in self._items(path, name, resume, streamed):
                if item is _NOT_TEXT:
                    self.stats["unknown_files_not_text"] += 1
                    return
                if isinstance(item, Bad):
                    lost = item.lost if item.lost != REST else max(size - self.position.offset, 1)
                    self.problems.bad(item.where, item.kind, item.detail, item.fix,
                                      file=item.file or name, lost=lost)  # fmt: skip
                    continue
                assert isinstance(item, Record)
                docs += 1
                self.stats["documents_read"] += 1
                yield Document(text=item.text, id=item.id or item.where, source=name,
                               metadata={"at": item.where},
                               part_of=name if streamed == "text" else "")  # fmt: skip
        except FormatError as e:
            self.problems.bad(name, e.kind, str(e), e.fix, file=name, lost=0 if docs else size)
            return
        except formats.STREAM_ERRORS as e:  # a corrupt or truncated compressed file
            kept = "; documents before it were kept" if docs else ""
            detail = f"unreadable ({type(e).__name__}: {formats.printable(str(e), 160)}){kept}"
            self.problems.bad(name, "corrupt_file", detail, "Re-download or re-compress the file",
                              file=name, lost=0 if docs else size)  # fmt: skip
            return
        self.stats["files_read"] += 1
        if resume is None and not docs and not self.problems.lost.get(name):
            self.stats["files_without_text"] += 1  # e.g. a CSV header alone, "[]"
        if base_suffix(path) not in SUPPORTED_SUFFIXES:
            self.stats["unknown_files_read_as_text"] += 1

    def _items(
        self, path: Path, name: str, resume: ReadPosition | None, streamed: str | None
    ) -> Iterator:
        """Records, `Bad`s (and `_NOT_TEXT`) of one file, resumed from `resume`."""
        suffix = base_suffix(path)
        at = self.position
        if streamed == "text":
            with formats.open_binary(path) as f:
                if resume:
                    _skip_bytes(f, resume.offset)
                    at.offset, at.lines, at.records = resume.offset, resume.lines, resume.records
                for item in text_items(f, name, at, sniffed=suffix not in SUPPORTED_SUFFIXES):
                    if isinstance(item, Record):
                        self.stats["bytes_read"] += len(item.text.encode("utf-8"))
                    yield item
            return
        if streamed == "jsonl":
            with formats.open_binary(path) as f:
                if resume:
                    _skip_bytes(f, resume.offset)
                    at.offset, at.lines = resume.offset, resume.lines
                elif (reason := binary_reason(_head(f))) is not None:
                    self._count(_size(path))
                    yield Bad(name, "binary_file", reason, BINARY_FIX, _size(path))
                    return
                yield from jsonl_items(f, name, self.text_field, at, self._count)
            return
        skip = resume.records if resume else 0
        for item in self._record_items(path, suffix, name):
            at.records += 1
            if at.records > skip:
                yield item

    def _count(self, n: int) -> None:
        self.on_bytes(n)
        self.stats["bytes_read"] += n

    def _record_items(self, path: Path, suffix: str, name: str) -> Iterator:
        if suffix == ".zip":
            yield from self._zip_items(path, name)
        elif suffix in formats.TABLE_SUFFIXES:
            yield from formats.iter_table(path, self.text_field, name)
        elif suffix in formats.WARC_SUFFIXES:
            yield from formats.iter_warc(path, name)
        else:
            with formats.open_binary(path) as f:
                yield from self._stream_items(f, suffix, name)

    def _stream_items(self, f: IO[bytes], suffix: str, name: str) -> Iterator:
        """Items of a stream read from its start (a plain file or a zip member)."""
        if suffix in formats.CSV_SUFFIXES:
            yield from iter_csv(f, self.text_field, name, "\t" if suffix == ".tsv" else ",")
        elif suffix in formats.HTML_SUFFIXES:
            yield from formats.iter_html(f, name)
        elif suffix == ".json":
            yield from iter_values(f, name, self.text_field)
        elif suffix in JSONL_SUFFIXES:
            yield from jsonl_items(f, name, self.text_field, ReadPosition())
        else:
            yield from text_items(f, name, ReadPosition(), suffix not in SUPPORTED_SUFFIXES)

    def _zip_items(self, path: Path, name: str) -> Iterator:
        """The members of a zip archive, in name order, read like the files of a folder."""
        try:
            archive = zipfile.ZipFile(formats.open_regular(path))
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise FormatError(f"not a readable zip archive ({e})", "corrupt_file",
                              "Re-download the archive") from None  # fmt: skip
        with archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                member = PurePosixPath(info.filename)
                suffix = base_suffix(member.name)
                if info.is_dir():
                    continue
                hidden = any(p.startswith(".") or p == "__MACOSX" for p in member.parts)
                if hidden or suffix in _NOT_IN_ZIP:
                    self.stats["zip_members_ignored"] += 1
                else:
                    yield from self._member_items(archive, info, suffix, f"{name}/{member}")

    def _member_items(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, suffix: str,
                      where: str) -> Iterator:  # fmt: skip
        try:
            with archive.open(info) as raw:
                f: IO[bytes] = raw
                compression = PurePosixPath(info.filename).suffix.lower()
                if compression == ".gz":
                    import gzip

                    f = gzip.GzipFile(fileobj=raw)  # type: ignore[assignment]
                items = self._stream_items(f, suffix, where)
                for item in items:
                    if item is _NOT_TEXT:
                        self.stats["zip_members_ignored"] += 1
                        return
                    if isinstance(item, Bad):
                        item.file = where
                        item.lost = info.file_size if item.lost == REST else item.lost
                    yield item
        except FormatError as e:
            yield Bad(where, e.kind, str(e), e.fix, info.file_size, where)
        except (zipfile.BadZipFile, NotImplementedError, *formats.STREAM_ERRORS) as e:
            yield Bad(where, "corrupt_file", f"unreadable zip member ({formats.printable(str(e))})",
                      "Re-download the archive", info.file_size, where)  # fmt: skip


def _head(f: IO[bytes]) -> bytes:
    """The first bytes of `f`, left unread."""
    peek = getattr(f, "peek", None)
    return peek(BINARY_SAMPLE)[:BINARY_SAMPLE] if peek else b""


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _streamed(path: Path) -> str | None:
    """ "jsonl" / "text" for files read from a byte offset, None for those read by record."""
    suffix = base_suffix(path)
    if suffix in (".jsonl", ".ndjson") or (suffix == ".json" and _is_json_lines(path)):
        return "jsonl"
    return "text" if suffix in TEXT_SUFFIXES or suffix not in SUPPORTED_SUFFIXES else None


def _is_json_lines(path: Path) -> bool:
    """Whether a .json file holds JSON lines (its first line is a whole value), not one
    document (an array or a pretty-printed object)."""
    import json

    try:
        with formats.open_binary(path) as f:
            raw, _ = read_line(f)
    except (FormatError, *formats.STREAM_ERRORS):
        return False  # reading it as a JSON document names the problem
    line = (raw or b"").removeprefix(b"\xef\xbb\xbf").strip()
    if not line or line[:1] == b"[":
        return False
    try:
        json.loads(line)
    except (ValueError, RecursionError):
        return False
    return True
