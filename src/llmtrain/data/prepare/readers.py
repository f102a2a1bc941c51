"""Readers: input paths → `Document`s.

`plan_inputs` expands the inputs (files; folders walked recursively in sorted order, hidden
entries skipped; `builtin:python`) and `Reader` streams documents from them: a text file
(.txt .md .rst ...) is one document, held in memory while it passes; a JSON-lines file is
streamed, one document per line (`text_field`, dotted for nested fields); CSV rows, Parquet /
Arrow rows (`text_field` names the column), HTML pages and WARC responses (text extracted,
boilerplate removed) come from `formats`; `.gz`, `.bz2` and `.zst` are read transparently.
Bad files and lines go to `Problems`, which stops the run with the fix or (with
--skip-bad-files) records and skips; a file cut short keeps the documents read before the cut.
`Reader.position` says where the next document comes from; a `Reader` given that position
as `start` goes on from there (a JSONL file from its byte offset, other records by count).
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

# a module import (not `from ... import`): builtin.py imports Document from this package
import llmtrain.data.builtin as builtin
from llmtrain.data.prepare import formats
from llmtrain.data.prepare.documents import Document, Problems
from llmtrain.data.prepare.formats import FormatError
from llmtrain.errors import DataError

TEXT_SUFFIXES = (".txt", ".text", ".md", ".markdown", ".rst", ".tex", ".org")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
RECORD_SUFFIXES = (
    formats.CSV_SUFFIXES + formats.TABLE_SUFFIXES + formats.HTML_SUFFIXES + formats.WARC_SUFFIXES
)
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + JSONL_SUFFIXES + RECORD_SUFFIXES
BUILTIN_PREFIX = "builtin:"
_BINARY_SAMPLE = 1 << 16
_UTF8_FIX = "Convert the file to UTF-8 (e.g. `iconv -f GB18030 -t UTF-8 in.txt > out.txt`)"
_BINARY_FIX = "Remove it from the inputs (point prepare at the text files only)"


@dataclass
class ReadPosition:
    """A place in the input stream: `source` indexes builtins then files; within it,
    `records` documents/records were read (or, for a JSONL file, `lines` lines ending at
    byte `offset` of its decompressed stream)."""

    source: int = 0
    records: int = 0
    offset: int = 0
    lines: int = 0


@dataclass
class InputPlan:
    """What will be read: files in order, builtin corpora, and what a folder walk skipped."""

    files: list[Path] = field(default_factory=list)
    builtins: list[str] = field(default_factory=list)
    unsupported: Counter[str] = field(default_factory=Counter)
    total_bytes: int = 0


def _base_suffix(path: Path) -> str:
    """ ".txt" for a.txt, a.txt.gz, a.txt.bz2 and a.txt.zst."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in formats.COMPRESSIONS:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _supported(path: Path) -> bool:
    return _base_suffix(path) in SUPPORTED_SUFFIXES


def _walk(folder: Path, exclude: Path | None, plan: InputPlan) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and (exclude is None or here / d != exclude)
        )
        hf_dataset = any(name.endswith(".arrow") for name in files)
        for name in sorted(files):
            path = here / name
            if name.startswith(".") or (hf_dataset and name in formats.HF_METADATA_FILES):
                continue
            if _supported(path):
                found.append(path)
            else:
                plan.unsupported[_base_suffix(path) or "(no suffix)"] += 1
    return found


def plan_inputs(inputs: list[str | Path], exclude: Path | None = None) -> InputPlan:
    """Expand `inputs`; DataError for a missing path, unknown builtin or unsupported file."""
    if not inputs:
        raise DataError("no input given: pass one or more files, folders or builtin:python")
    plan = InputPlan()
    exclude = exclude.resolve() if exclude is not None else None
    seen: set[Path] = set()
    for item in inputs:
        if isinstance(item, str) and item.startswith(BUILTIN_PREFIX):
            name = item[len(BUILTIN_PREFIX) :]
            if name not in builtin.BUILTIN_CORPORA:
                raise DataError(
                    f"unknown built-in corpus {item!r}; available: "
                    + ", ".join(BUILTIN_PREFIX + k for k in builtin.BUILTIN_CORPORA)
                )
            plan.builtins.append(name)
            plan.total_bytes += builtin.BUILTIN_CORPORA[name]()
            continue
        path = Path(item)
        if not path.exists():
            raise DataError(f"input path not found: {path} (check the spelling and the folder)")
        if path.is_dir():
            if exclude is not None and exclude in (path.resolve(), *path.resolve().parents):
                raise DataError(
                    f"input folder {path} is inside the output directory {exclude}; "
                    "write --out somewhere else (e.g. beside the raw text)"
                )
            paths = _walk(path.resolve(), exclude, plan)
        elif _supported(path):
            paths = [path.resolve()]
        else:
            raise DataError(
                f"input file {path} has an unsupported type {_base_suffix(path) or '(none)'!r}; "
                f"supported: {' '.join(SUPPORTED_SUFFIXES)} (optionally "
                f"{' '.join(formats.COMPRESSIONS)})"
            )
        for p in paths:
            if p not in seen:
                seen.add(p)
                plan.files.append(p)
                plan.total_bytes += p.stat().st_size
    return plan


def _open_binary(path: Path) -> IO[bytes]:
    return formats.open_binary(path)


def _binary_reason(sample: bytes) -> str | None:
    """Why `sample` does not look like UTF-8 text, or None when it does."""
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "is UTF-16 encoded text (byte-order mark), not UTF-8"
    if b"\x00" in sample:
        return "looks like a binary file (it contains NUL bytes), not text"
    controls = sum(sample.count(bytes([c])) for c in (*range(1, 9), *range(14, 27), *range(28, 32)))
    if sample and controls / len(sample) > 0.1:
        return f"looks like a binary file ({controls / len(sample):.0%} control bytes), not text"
    return None


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


def get_field(record: dict[str, Any], dotted: str) -> Any:
    """`record["a"]["b"]` for "a.b" (list items by number: "messages.0.content"); KeyError."""
    node: Any = record
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(part)
    return node


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
        self.start = start or ReadPosition()
        self.position = ReadPosition(self.start.source)

    def _resuming(self, source: int) -> ReadPosition | None:
        """The start position when `source` is the one to resume inside (counted already)."""
        start = self.start
        return start if source == start.source and (start.records or start.lines) else None

    def __iter__(self) -> Iterator[Document]:
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
        for i, path in enumerate(self.plan.files, len(self.plan.builtins)):
            if i < self.start.source:
                continue
            self.position = ReadPosition(i)
            resume = self._resuming(i)
            suffix = _base_suffix(path)
            if suffix in TEXT_SUFFIXES:
                docs = iter(()) if resume else self._read_text(path)
            elif suffix in JSONL_SUFFIXES:
                docs = self._read_json(path, resume)
            else:
                docs = self._read_records(path, suffix, resume)
            try:
                for doc in docs:
                    self.stats["documents_read"] += 1
                    yield doc
            except formats.STREAM_ERRORS as e:  # a corrupt or truncated compressed file
                detail = f"unreadable ({type(e).__name__}: {e}); documents before it were kept"
                fix = "Re-download or re-compress the file"
                self.problems.bad(str(path), "corrupt_file", detail, fix)
        self.position = ReadPosition(len(self.plan.builtins) + len(self.plan.files))

    def _read_records(
        self, path: Path, suffix: str, resume: ReadPosition | None
    ) -> Iterator[Document]:
        """CSV / Parquet / Arrow rows, an HTML page or WARC records (see `formats`)."""
        if resume is None:  # a resumed file was counted before the checkpoint
            size = path.stat().st_size
            self.on_bytes(size)
            self.stats["bytes_read"] += size
        if suffix in formats.CSV_SUFFIXES or suffix in formats.TABLE_SUFFIXES:
            is_csv = suffix in formats.CSV_SUFFIXES
            records = (formats.iter_csv if is_csv else formats.iter_table)(path, self.text_field)
        elif suffix in formats.HTML_SUFFIXES:
            records = formats.iter_html(path)
        else:
            records = formats.iter_warc(path)
        skip = resume.records if resume else 0
        try:
            for where, text, doc_id in records:
                self.position.records += 1
                if self.position.records <= skip:
                    continue
                yield Document(
                    text=text, id=doc_id or where, source=str(path), metadata={"at": where}
                )
        except FormatError as e:
            self.problems.bad(str(path), "unreadable_file", str(e), "Fix or remove the file")
            return
        self.stats["files_read"] += 1

    def _read_text(self, path: Path) -> Iterator[Document]:
        with _open_binary(path) as f:
            data = f.read()
        self.on_bytes(path.stat().st_size)
        self.stats["bytes_read"] += len(data)
        reason = _binary_reason(data[:_BINARY_SAMPLE])
        if reason is None and b"\x00" in data:
            reason = "looks like a binary file (it contains NUL bytes), not text"
        if reason is not None:
            self.problems.bad(str(path), "binary_file", reason, _BINARY_FIX)
            return
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            detail = f"invalid UTF-8 at byte offset {e.start} (line {line}): {e.reason}"
            self.problems.bad(str(path), "invalid_utf8_file", detail, _UTF8_FIX)
            return
        self.stats["files_read"] += 1
        self.position.records = 1
        yield Document(text=text, id=str(path), source=str(path))

    def _read_json(self, path: Path, resume: ReadPosition | None) -> Iterator[Document]:
        with _open_binary(path) as f:
            head = f.read(_BINARY_SAMPLE)
        if resume is None:  # a resumed file passed these checks before the checkpoint
            reason = _binary_reason(head)
            if reason is not None:
                self.on_bytes(path.stat().st_size)
                self.problems.bad(str(path), "binary_file", reason, _BINARY_FIX)
                return
            self.stats["files_read"] += 1
        if head.lstrip()[:1] == b"[":
            yield from self._read_json_array(path, resume)
            return
        with _open_binary(path) as f:
            start = resume.lines if resume else 0
            if resume:
                _skip_bytes(f, resume.offset)
                self.position.offset, self.position.lines = resume.offset, resume.lines
            for lineno, raw in enumerate(f, start + 1):
                self.position.offset += len(raw)
                self.position.lines = lineno
                self.on_bytes(len(raw))
                self.stats["bytes_read"] += len(raw)
                if raw.strip():
                    doc = self._parse_line(raw, f"{path}:{lineno}", str(path))
                    if doc is not None:
                        yield doc

    def _read_json_array(self, path: Path, resume: ReadPosition | None) -> Iterator[Document]:
        """A .json file holding one array of records (read whole: such files are small)."""
        with _open_binary(path) as f:
            data = f.read()
        if resume is None:
            self.on_bytes(path.stat().st_size)
            self.stats["bytes_read"] += len(data)
        try:
            records = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as e:
            detail = f"invalid UTF-8 at byte offset {e.start}: {e.reason}"
            self.problems.bad(str(path), "invalid_utf8_file", detail, _UTF8_FIX)
            return
        except json.JSONDecodeError as e:
            detail = f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}"
            self.problems.bad(str(path), "malformed_json_file", detail, "Fix the JSON")
            return
        skip = resume.records if resume else 0
        for i, record in enumerate(records[skip:], skip):
            self.position.records = i + 1
            doc = self._to_document(record, f"{path}[{i}]", str(path))
            if doc is not None:
                yield doc

    def _parse_line(self, raw: bytes, where: str, source: str) -> Document | None:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            detail = f"invalid UTF-8 at byte {e.start} of the line: {e.reason}"
            self.problems.bad(where, "invalid_utf8_line", detail, _UTF8_FIX)
            return None
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            detail = f"malformed JSON line: {e.msg} (column {e.colno})"
            self.problems.bad(where, "malformed_json_line", detail, "Fix or delete that line")
            return None
        return self._to_document(record, where, source)

    def _to_document(self, record: Any, where: str, source: str) -> Document | None:
        if not isinstance(record, dict):
            detail = f"expected a JSON object with a {self.text_field!r} field, got {type(record).__name__}"
            self.problems.bad(where, "json_not_object", detail, "Give one JSON object per line")
            return None
        try:
            text = get_field(record, self.text_field)
        except KeyError:
            keys = ", ".join(map(repr, list(record)[:20])) or "none"
            detail = f"no text field {self.text_field!r} (keys present: {keys})"
            fix = "Pass --text-field NAME naming the field that holds the text (dotted for nested)"
            self.problems.bad(where, "missing_text_field", detail, fix)
            return None
        if not isinstance(text, str):
            detail = f"field {self.text_field!r} holds {type(text).__name__}, not a string"
            self.problems.bad(where, "text_field_not_string", detail, "Point --text-field at text")
            return None
        doc_id = record.get("id")
        doc_id = str(doc_id) if isinstance(doc_id, (str, int)) else where
        return Document(text=text, id=doc_id, source=source, metadata={"at": where})
