"""Labelled rows from CSV / TSV / JSONL / JSON / Parquet files, each with the line (or row)
number it came from, so every problem can be reported where it is.

`read_rows(path)` -> list[Row]; a row the format cannot parse (a CSV row with the wrong
number of fields, a JSONL line that is not a JSON object) is a `DataError` naming the file,
the line and the fix: a broken file is never half-read. `require_field` checks a column.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmtrain.data.prepare.formats import open_binary
from llmtrain.errors import DataError

SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")


@dataclass
class Row:
    line: int  # 1-based line of the file (CSV/JSONL) or row number (Parquet, JSON list)
    fields: dict[str, Any]


def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in (".gz", ".bz2", ".zst")]
    for s in reversed(suffixes):
        if s in SUFFIXES:
            return s[1:]
    raise DataError(
        f"{path}: unknown file type; fine-tuning reads {', '.join(SUFFIXES)} (optionally .gz)"
    )


def read_rows(path: str | Path) -> list[Row]:
    """Every row of `path` with its line number; DataError on a file or row it cannot parse."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"data file not found: {p}")
    kind = _kind(p)
    try:
        if kind in ("csv", "tsv"):
            return _read_csv(p, "\t" if kind == "tsv" else ",")
        if kind == "parquet":
            return _read_parquet(p)
        return _read_json(p, kind)
    except UnicodeDecodeError as e:
        raise DataError(f"{p}: not UTF-8 ({e.reason}); convert it with iconv first") from None


def _read_csv(p: Path, delimiter: str) -> list[Row]:
    with open_binary(p) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        reader = csv.reader(text, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{p}: the file is empty; expected a header row") from None
        header = [h.strip() for h in header]
        rows: list[Row] = []
        line = reader.line_num
        try:
            for values in reader:
                start, line = line + 1, reader.line_num
                if not values:
                    continue  # a blank line
                if len(values) != len(header):
                    raise DataError(
                        f"{p}:{start}: broken row: {len(values)} fields where the header has "
                        f"{len(header)} ({', '.join(header)}); quote fields that contain "
                        f"{'tabs' if delimiter == chr(9) else 'commas'} or fix the row"
                    )
                rows.append(Row(start, dict(zip(header, values, strict=True))))
        except csv.Error as e:
            raise DataError(f"{p}:{reader.line_num}: broken CSV ({e}); fix the quoting") from None
    return rows


def _read_json(p: Path, kind: str) -> list[Row]:
    with open_binary(p) as raw:
        data = raw.read().decode("utf-8-sig")
    if kind == "json" and data.lstrip().startswith("["):
        try:
            items = json.loads(data)
        except json.JSONDecodeError as e:
            raise DataError(f"{p}:{e.lineno}: invalid JSON ({e.msg})") from None
        rows = [Row(i + 1, item) for i, item in enumerate(items)]
    else:
        rows = []
        for i, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(
                    f"{p}:{i}: invalid JSON ({e.msg}); each line must be one JSON object"
                ) from None
            rows.append(Row(i, item))
    for r in rows:
        if not isinstance(r.fields, dict):
            raise DataError(f"{p}:{r.line}: expected a JSON object, got {type(r.fields).__name__}")
    return rows


def _read_parquet(p: Path) -> list[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover
        raise DataError("reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        table = pq.read_table(p)
    except Exception as e:  # pyarrow raises its own ArrowInvalid etc.
        raise DataError(f"{p}: unreadable Parquet ({e})") from None
    return [Row(i + 1, d) for i, d in enumerate(table.to_pylist())]


def require_field(path: str | Path, rows: list[Row], name: str, option: str) -> None:
    """DataError unless the first row has column `name` (the CLI flag to fix it: `option`)."""
    if rows and name not in rows[0].fields:
        have = ", ".join(map(str, rows[0].fields))
        raise DataError(
            f"{path}: no column {name!r} (columns: {have}); pass {option} with one of them"
        )
