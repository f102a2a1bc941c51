"""JSON input → records: JSON lines one line at a time, and JSON documents (an array of
records, one pretty-printed object, or several concatenated) as a stream of values.

Every line or value is bounded (`MAX_RECORD_BYTES`); nesting beyond Python's recursion
limit, integers beyond its digit limit and lone surrogate escapes make that record `Bad`,
not the file; a byte-order mark before the first line is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

from llmtrain.data.prepare.formats import MAX_RECORD_BYTES, Bad, Record, printable
from llmtrain.data.prepare.sniff import utf8_fix

_BOM = b"\xef\xbb\xbf"
_VALUE_ERRORS = (ValueError, RecursionError)  # JSONDecodeError, digit limit, nesting
_DECODER = json.JSONDecoder()


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


def _why(e: BaseException) -> str:
    if isinstance(e, RecursionError):
        return "nested too deeply to parse"
    if isinstance(e, json.JSONDecodeError):
        return f"{e.msg} (column {e.colno})"
    return printable(str(e), 120)  # e.g. Python's limit on integer digits


def to_item(value: Any, where: str, field: str, size: int) -> Record | Bad:
    """The record in parsed JSON `value` (text at `field`), or why it has none."""
    if not isinstance(value, dict):
        detail = f"expected a JSON object with a {field!r} field, got {type(value).__name__}"
        return Bad(where, "json_not_object", detail, "Give one JSON object per line", size)
    try:
        text = get_field(value, field)
    except KeyError:
        keys = ", ".join(printable(repr(k), 40) for k in list(value)[:20]) or "none"
        detail = f"no text field {field!r} (keys present: {keys})"
        fix = "Pass --text-field NAME naming the field that holds the text (dotted for nested)"
        return Bad(where, "missing_text_field", detail, fix, size)
    if not isinstance(text, str):
        detail = f"field {field!r} holds {type(text).__name__}, not a string"
        return Bad(where, "text_field_not_string", detail, "Point --text-field at text", size)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        detail = f"the text holds a lone surrogate escape ({printable(text[e.start])}) at character {e.start}"
        return Bad(where, "invalid_unicode_escape", detail, "Fix the escape (\\ud800 alone is not Unicode)", size)  # fmt: skip
    doc_id = value.get("id")
    doc_id = printable(str(doc_id), 200) if isinstance(doc_id, (str, int)) else None
    return Record(where, text, doc_id)


def parse_line(raw: bytes, where: str, field: str) -> Record | Bad:
    """One JSON line (bytes, newline included) → a record or why not."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        detail = f"invalid UTF-8 at byte {e.start} of the line: {e.reason}"
        return Bad(where, "invalid_utf8_line", detail, utf8_fix(raw), len(raw))
    try:
        value = json.loads(line)
    except _VALUE_ERRORS as e:
        return Bad(where, "malformed_json_line", f"malformed JSON line: {_why(e)}",
                   "Fix or delete that line", len(raw))  # fmt: skip
    return to_item(value, where, field, len(raw))


def read_line(f: IO[bytes]) -> tuple[bytes | None, int]:
    """The next line (b"" at the end; None when it is over `MAX_RECORD_BYTES`) and its length."""
    raw = f.readline(MAX_RECORD_BYTES + 1)
    if len(raw) <= MAX_RECORD_BYTES or raw.endswith(b"\n"):
        return raw, len(raw)
    size = len(raw)
    while chunk := f.readline(1 << 20):
        size += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return None, size


def line_item(
    raw: bytes | None, size: int, where: str, field: str, first: bool
) -> Record | Bad | None:
    """The record of one JSON line (None for a blank line)."""
    if raw is None:
        return Bad(where, "line_too_long", f"a line of {size:,} bytes (the limit is "
                   f"{MAX_RECORD_BYTES >> 20} MiB)", "Split the record", size)  # fmt: skip
    if first and raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    if not raw.strip():
        return None
    return parse_line(raw, where, field)


def iter_values(f: IO[bytes], name: str, field: str) -> Iterator[Record | Bad]:
    """Records of a JSON document: the items of a top-level array, or each top-level value
    (one pretty-printed object, or several concatenated)."""
    reader = _ValueReader(f)
    i = 0
    try:
        for value, size, error in reader:
            if error is not None:
                yield Bad(f"{name}[{i}]", "malformed_json_file", f"after {i} records: {error}",
                          "Fix the JSON", reader.remaining())  # fmt: skip
                return
            if size > MAX_RECORD_BYTES:
                yield Bad(f"{name}[{i}]", "record_too_large", f"a record of {size:,} characters "
                          f"(the limit is {MAX_RECORD_BYTES >> 20} MiB)", "Split the record", size)  # fmt: skip
            else:
                yield to_item(value, f"{name}[{i}]", field, size)
            i += 1
    except UnicodeError as e:
        yield Bad(f"{name}[{i}]", "invalid_utf8_file", f"after {i} records: {e}",
                  utf8_fix(reader.sample), reader.remaining())  # fmt: skip


class _ValueReader:
    """Streams JSON values from bytes: array items one by one when the document is an array,
    else top-level values; each value must fit in `MAX_RECORD_BYTES`."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f, self.buf, self.pos, self.eof = f, "", 0, False
        self.decoder = _Utf8Stream()
        self.top_array = self.in_array = False
        self.sample = b""  # the first chunk, for an encoding guess

    def remaining(self) -> int:
        return len(self.buf) - self.pos

    def _more(self) -> bool:
        if self.eof:
            return False
        chunk = self.f.read(1 << 20)
        self.sample = self.sample or chunk[:65536]
        self.eof = not chunk
        self.buf = self.buf[self.pos :] + self.decoder.decode(chunk, final=self.eof)
        self.pos = 0
        return bool(chunk)

    def _skip(self, chars: str) -> str:
        """Skip whitespace and `chars`; the next character ("" at the end)."""
        while True:
            while self.pos < len(self.buf) and (
                self.buf[self.pos].isspace() or self.buf[self.pos] in chars
            ):
                self.pos += 1
            if self.pos < len(self.buf) or not self._more():
                return self.buf[self.pos : self.pos + 1]

    def __iter__(self) -> Iterator[tuple[Any, int, str | None]]:
        first = self._skip("\ufeff")
        if first == "[":
            self.top_array = self.in_array = True
            self.pos += 1
        while True:
            nxt = self._skip("," if self.in_array else "")
            if nxt == "" or (self.in_array and nxt == "]"):
                return
            yield self._value()

    def _value(self) -> tuple[Any, int, str | None]:
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                if self.remaining() < MAX_RECORD_BYTES and self._more():
                    continue
                if self.remaining() >= MAX_RECORD_BYTES:
                    return None, 0, f"a JSON value over {MAX_RECORD_BYTES >> 20} MiB, or malformed"
                return None, 0, f"malformed JSON at character {e.pos}: {e.msg}"
            except _VALUE_ERRORS as e:
                return None, 0, f"unreadable JSON value: {_why(e)}"
            if end == len(self.buf) and not self.eof and self._more():
                continue  # a number may go on in the next chunk
            size = end - self.pos
            self.pos = end
            return value, size, None


class _Utf8Stream:
    """Incremental UTF-8 decoding that raises UnicodeError naming the byte offset."""

    def __init__(self) -> None:
        import codecs

        self._d = codecs.getincrementaldecoder("utf-8")()
        self.offset = 0

    def decode(self, chunk: bytes, final: bool) -> str:
        try:
            text = self._d.decode(chunk, final)
        except UnicodeDecodeError as e:
            raise UnicodeError(f"invalid UTF-8 at byte offset {self.offset + e.start}") from None
        self.offset += len(chunk)
        return text
