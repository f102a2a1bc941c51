"""CSV / TSV rows → records, one physical line at a time, so every row that cannot be used is
named by its line and its bytes are counted.

The header may start with an Excel byte-order mark. A row whose field count differs from the
header's (an unquoted delimiter in the text, a short row) is a `Bad` row; a line that is not
UTF-8 is a `Bad` line; a quote that never closes (or a field over `MAX_RECORD_BYTES`) makes
its first line `Bad` and parsing starts again on the next line, so one stray quote cannot
swallow the rows after it. An empty cell is an empty document (counted when removed).
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Iterator
from typing import IO

from llmtrain.data.prepare.formats import (
    FIELD_FIX,
    MAX_RECORD_BYTES,
    Bad,
    FormatError,
    Record,
    printable,
)
from llmtrain.data.prepare.sniff import utf8_fix

MAX_RESYNCS = 1000  # unclosed quotes per file before the rest of it is refused
_QUOTE_FIX = "Close or escape the quote (a quote inside a quoted field is written twice)"


class _Lines:
    """Decoded lines of a binary stream for `csv.reader`, remembering those of the current row
    (`row`) and queuing lines to read again (`again`); undecodable / over-long lines become
    `Bad`s in `bad` and are not passed on."""

    def __init__(self, f: IO[bytes], name: str) -> None:
        self.f, self.name = f, name
        self.lineno = 0
        self.row: list[tuple[int, str, int]] = []  # (line number, text, bytes)
        self.again: deque[tuple[int, str, int]] = deque()
        self.bad: list[Bad] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        while True:
            item = self.again.popleft() if self.again else self._read()
            if item is not None:
                self.row.append(item)
                return item[1]

    def _read(self) -> tuple[int, str, int] | None:
        raw = self.f.readline(MAX_RECORD_BYTES + 1)
        if not raw:
            raise StopIteration
        self.lineno += 1
        where = f"{self.name}:{self.lineno}"
        if len(raw) > MAX_RECORD_BYTES:
            size = len(raw) + _skip_line(self.f)
            self.bad.append(Bad(where, "line_too_long", f"a line of {size:,} bytes (the limit is "
                                f"{MAX_RECORD_BYTES >> 20} MiB)", "Split the line", size))  # fmt: skip
            return None
        try:
            text = raw.decode("utf-8-sig" if self.lineno == 1 else "utf-8")
        except UnicodeDecodeError as e:
            detail = f"invalid UTF-8 at byte {e.start} of line {self.lineno}: {e.reason}"
            self.bad.append(Bad(where, "invalid_utf8_line", detail, utf8_fix(raw), len(raw)))
            return None
        return self.lineno, text, len(raw)


def _skip_line(f: IO[bytes]) -> int:
    """Read to the end of the current line; the bytes read."""
    n = 0
    while chunk := f.readline(1 << 20):
        n += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return n


def iter_csv(f: IO[bytes], column: str, name: str, delimiter: str) -> Iterator[Record | Bad]:
    """One record per data row of a CSV/TSV stream with a header row; `column` holds the text."""
    csv.field_size_limit(MAX_RECORD_BYTES)
    lines = _Lines(f, name)
    rows = csv.reader(lines, delimiter=delimiter, strict=True)
    try:
        header = next(rows, [])
    except csv.Error as e:
        raise FormatError(f"unreadable header: {e}") from None
    yield from lines.bad
    if column not in header:
        cols = ", ".join(printable(repr(h), 40) for h in header[:20]) or "none"
        raise FormatError(f"no column {column!r} (columns: {cols})", "missing_text_field",
                          FIELD_FIX)  # fmt: skip
    text_at, id_at = header.index(column), header.index("id") if "id" in header else None
    resyncs = 0
    while True:
        lines.row = []
        try:
            row = next(rows, None)
        except csv.Error as e:
            yield from lines.bad
            lines.bad.clear()
            resyncs += 1
            if resyncs > MAX_RESYNCS:
                raise FormatError(f"more than {MAX_RESYNCS} unclosed quotes") from None
            first, *rest = lines.row or [(lines.lineno, "", 0)]
            yield _malformed(f"{name}:{first[0]}", first[0], str(e), first[2])
            lines.again.extendleft(reversed(rest))
            rows = csv.reader(lines, delimiter=delimiter, strict=True)
            continue
        yield from lines.bad
        lines.bad.clear()
        if row is None:
            return
        if not row:  # a blank line
            continue
        yield _row_item(row, lines.row, name, len(header), text_at, id_at)


def _malformed(where: str, line: int, error: str, size: int) -> Bad:
    if "end of data" in error or "expected after" in error or "field limit" in error:
        detail = (f"a quoted field starting on line {line} does not close properly ({error}); "
                  "that line is skipped and reading goes on at the next")  # fmt: skip
        return Bad(where, "csv_unclosed_quote", detail, _QUOTE_FIX, size)
    detail = f"line {line} cannot be parsed ({error}); it is skipped"
    return Bad(where, "csv_malformed_row", detail, "Fix or delete that line", size)


def _row_item(
    row: list[str], spans: list[tuple[int, str, int]], name: str, width: int, text_at: int,
    id_at: int | None,
) -> Record | Bad:  # fmt: skip
    line = spans[0][0] if spans else 0
    where = f"{name}:{line}"
    if len(row) != width:
        size = sum(s[2] for s in spans)
        what = "more" if len(row) > width else "fewer"
        fix = ("Quote fields that contain the delimiter" if len(row) > width
               else "Give every row all the header's columns")  # fmt: skip
        return Bad(where, "csv_field_count", f"line {line} has {len(row)} fields, {what} than "
                   f"the header's {width}", fix, size)  # fmt: skip
    return Record(where, row[text_at], row[id_at] if id_at is not None else None)
