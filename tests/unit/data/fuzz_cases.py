"""Hostile inputs for every reader, built in a temporary folder by the tests themselves.

Each case writes its files into a folder and states what reading it (with --skip-bad-files)
must give: the number of documents and the bad inputs by kind. `run_case` reads in-process
and checks, beside those numbers, that nothing raised but a one-line `DataError`, that every
file is accounted for (documents, a bad input or a count of files not read) and that every
bad record names where it is and the bytes it cost.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import os
import random
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PAGE = (
    "<html><head><title>T</title></head><body><nav><a href='/'>Home</a></nav><article>"
    "<h1>Tea in Hangzhou</h1><p>Longjing tea has been grown in the hills west of Hangzhou "
    "for more than a thousand years, and the leaves are still roasted by hand in iron woks "
    "during the spring harvest.</p><p>Visitors walk up from the lake through the terraces, "
    "and many farms serve the new tea in glass cups so the leaves can be seen unfolding.</p>"
    "<p>西湖龙井茶产于杭州西湖的山中，已有一千多年的历史，春天采摘后在铁锅中手工炒制。</p>"
    "</article><footer>Copyright 2024</footer></body></html>"
)
ROWS = [{"id": f"r{i}", "text": f"row {i}: the quick brown fox 敏捷的狐狸 {i}"} for i in range(6)]
# kinds a single record (line, row, array item, WARC record) can have: they must cost bytes
RECORD_KINDS = {
    "malformed_json_line", "invalid_utf8_line", "json_not_object", "missing_text_field",
    "text_field_not_string", "invalid_unicode_escape", "line_too_long", "csv_field_count",
    "csv_unclosed_quote", "csv_malformed_row", "warc_bad_length", "truncated_record",
    "record_too_large",
}  # fmt: skip


@dataclass
class Case:
    name: str
    build: Callable[[Path], None]
    docs: int
    problems: dict[str, int] = field(default_factory=dict)
    text_field: str = "text"
    read_unknown: bool = True
    patch: dict[str, int] = field(default_factory=dict)  # module constants made small


def rbytes(n: int) -> bytes:
    """`n` random bytes, the same on every run."""
    return random.Random(n).randbytes(n)


def cut(data: bytes, share: float) -> bytes:
    return data[: int(len(data) * share)]


def jsonl(rows: list) -> bytes:
    return "".join(
        (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows
    ).encode("utf-8")


def zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


def many_rows(n: int = 2000) -> bytes:
    rng = random.Random(0)
    return jsonl(
        [{"text": f"line {i} " + " ".join(str(rng.random()) for _ in range(12))} for i in range(n)]
    )


def warc(pages: int = 22, gz: bool = True) -> bytes:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=gz)
    for i in range(pages):
        headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.0")
        body = PAGE.replace("Tea in Hangzhou", f"Tea page {i}").encode()
        fixed = {
            "WARC-Record-ID": f"<urn:uuid:00000000-0000-0000-0000-{i:012d}>",
            "WARC-Date": "2024-01-01T00:00:00Z",
        }  # the same bytes on every run
        rec = writer.create_warc_record(f"https://ex.org/{i}", "response", payload=io.BytesIO(body),
                                        http_headers=headers, warc_headers_dict=fixed)  # fmt: skip
        writer.write_record(rec)
    return buf.getvalue()


def table(path: Path, columns: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)


def w(name: str, data: bytes | str) -> Callable[[Path], None]:
    """A builder writing one file."""

    def build(root: Path) -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)

    return build


def several(*builders: Callable[[Path], None]) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        for b in builders:
            b(root)

    return build


def zipped(members: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _long_path(root: Path) -> None:
    """A file whose absolute path is over 4096 bytes (made level by level)."""
    here = os.getcwd()
    try:
        os.chdir(root)
        for _ in range(18):
            os.mkdir("d" * 240)
            os.chdir("d" * 240)
        Path("deep.txt").write_text("too deep to open by its path")
    finally:
        os.chdir(here)


def _symlinks(root: Path) -> None:
    (root / "ok.txt").write_text("kept")
    os.symlink(root / "nowhere", root / "dangling.txt")
    os.symlink(root / "loop2.txt", root / "loop1.txt")
    os.symlink(root / "loop1.txt", root / "loop2.txt")
    os.symlink("/dev/zero", root / "zero.txt")
    (root / "sub").mkdir()
    (root / "sub" / "in.txt").write_text("inside")
    os.symlink(root, root / "sub" / "back")  # a folder loop


TEXT_CASES = [
    Case("txt_plain", w("a.txt", "hello 世界\n"), 1),
    Case("txt_empty", w("a.txt", ""), 1),
    Case("txt_nul_start", w("a.txt", b"\x00" * 5000), 0, {"binary_file": 1}),
    Case("txt_nul_late", w("a.txt", b"a" * 70000 + b"\x00"), 0, {"binary_file": 1}),
    Case("txt_utf16", w("a.txt", "hello".encode("utf-16")), 0, {"binary_file": 1}),
    Case("txt_controls", w("a.txt", bytes(range(1, 32)) * 50), 0, {"binary_file": 1}),
    Case("txt_gbk", w("a.txt", "中文的句子。".encode("gbk")), 0, {"invalid_utf8_file": 1}),
    Case(
        "txt_latin1",
        w("a.txt", "Café crème brûlée à la façade.\n".encode("latin-1") * 5),
        0,
        {"invalid_utf8_file": 1},
    ),  # fmt: skip
    Case("txt_cut_char", w("a.txt", b"abc" + "中".encode()[:2]), 0, {"invalid_utf8_file": 1}),
    Case("txt_crlf_bom", w("a.txt", "\ufeffline\r\nline2\r\n"), 1),
    Case("txt_pieces", w("a.txt", ("paragraph 段落 " * 20 + "\n\n") * 40), 20, patch={"doc": 1000}),
    Case("txt_one_long_line", w("a.txt", "a" * 5000), 5, patch={"doc": 1000}),
    Case("txt_cjk_no_space", w("a.txt", "汉字" * 1000), 7, patch={"doc": 1000}),
    Case("txt_gz", w("a.txt.gz", gzip.compress("压缩 text".encode())), 1),
    Case(
        "txt_gz_cut",
        w("a.txt.gz", gzip.compress(rbytes(3000).hex().encode())[:1500]),
        0,
        {"corrupt_file": 1},
    ),  # fmt: skip
    Case("txt_gz_junk", w("a.txt.gz", "not gzip at all"), 0, {"not_compressed": 1}),
    Case("txt_gz_empty", w("a.txt.gz", gzip.compress(b"")), 1),
    Case(
        "txt_bz2_cut",
        w("a.txt.bz2", bz2.compress(rbytes(3000).hex().encode())[:900]),
        0,
        {"corrupt_file": 1},
    ),  # fmt: skip
    Case("txt_zst", w("a.txt.zst", zstd("纯文本".encode())), 1),
    Case(
        "txt_zst_cut",
        w("a.txt.zst", zstd(rbytes(30000).hex().encode())[:20000]),
        0,
        {"corrupt_file": 1},
    ),  # fmt: skip
    Case("txt_zst_is_gzip", w("a.txt.zst", gzip.compress(b"gz inside")), 0, {"not_compressed": 1}),
    Case(
        "txt_zst_corrupt", w("a.txt.zst", b"\x28\xb5\x2f\xfd" + rbytes(200)), 0, {"corrupt_file": 1}
    ),  # fmt: skip
    Case("txt_zst_two_frames", w("a.txt.zst", zstd(b"one ") + zstd(b"two")), 1),
]

JSONL_CASES = [
    Case("jsonl_ok", w("a.jsonl", jsonl(ROWS)), 6),
    Case("jsonl_bom", w("a.jsonl", b"\xef\xbb\xbf" + jsonl(ROWS[:2])), 2),
    Case(
        "jsonl_deep",
        w("a.jsonl", jsonl(['{"text": ' + "[" * 100_000, ROWS[0]])),
        1,
        {"malformed_json_line": 1},
    ),  # fmt: skip
    Case(
        "jsonl_surrogate",
        w("a.jsonl", jsonl(['{"text": "a\\ud800b"}', ROWS[0]])),
        1,
        {"invalid_unicode_escape": 1},
    ),  # fmt: skip
    Case(
        "jsonl_5000_digits",
        w("a.jsonl", jsonl(['{"text": "x", "n": ' + "9" * 5000 + "}", *ROWS[:3]])),
        3,
        {"malformed_json_line": 1},
    ),  # fmt: skip
    Case(
        "jsonl_malformed",
        w("a.jsonl", jsonl([ROWS[0], '{"text": "cut', ROWS[1]])),
        2,
        {"malformed_json_line": 1},
    ),  # fmt: skip
    Case(
        "jsonl_not_object",
        w("a.jsonl", jsonl([[1, 2], "3", '"s"', ROWS[0]])),
        1,
        {"json_not_object": 3},
    ),  # fmt: skip
    Case(
        "jsonl_missing_field",
        w("a.jsonl", jsonl([{"body": "x"}, ROWS[0]])),
        1,
        {"missing_text_field": 1},
    ),  # fmt: skip
    Case(
        "jsonl_non_string",
        w("a.jsonl", jsonl([{"text": 3}, {"text": None}, {"text": ["a"]}])),
        0,
        {"text_field_not_string": 3},
    ),  # fmt: skip
    Case(
        "jsonl_bad_utf8",
        w("a.jsonl", jsonl([ROWS[0]]) + b'{"text": "\xff\xfe"}\n'),
        1,
        {"invalid_utf8_line": 1},
    ),  # fmt: skip
    Case(
        "jsonl_blank_and_crlf", w("a.jsonl", b"\n\r\n" + jsonl(ROWS[:2]).replace(b"\n", b"\r\n")), 2
    ),
    Case("jsonl_empty_text", w("a.jsonl", jsonl([{"text": ""}])), 1),
    Case("jsonl_no_final_newline", w("a.jsonl", jsonl(ROWS[:2]).rstrip(b"\n")), 2),
    Case("jsonl_nested_field", w("a.jsonl", jsonl([{"m": [{"c": "深"}]}])), 1, text_field="m.0.c"),
    Case(
        "jsonl_long_line",
        w("a.jsonl", jsonl([{"text": "x" * 3000}, ROWS[0]])),
        1,
        {"line_too_long": 1},
        patch={"record": 1000},
    ),  # fmt: skip
    Case("jsonl_binary", w("a.jsonl", rbytes(10) + b"\x00" * 2000), 0, {"binary_file": 1}),
    Case(
        "jsonl_utf16",
        w("a.jsonl", jsonl(ROWS[:1]).decode().encode("utf-16")),
        0,
        {"binary_file": 1},
    ),  # fmt: skip
    Case(
        "jsonl_gz_cut",
        w("a.jsonl.gz", cut(gzip.compress(many_rows()), 0.5)),
        -1,
        {"corrupt_file": 1},
    ),
    Case("jsonl_zst_cut", w("a.jsonl.zst", cut(zstd(many_rows()), 0.9)), -1, {"corrupt_file": 1}),
    Case("jsonl_bz2", w("a.jsonl.bz2", bz2.compress(jsonl(ROWS))), 6),
]

JSON_CASES = [
    Case("json_array", w("a.json", json.dumps(ROWS, indent=2)), 6),
    Case("json_pretty_object", w("a.json", json.dumps(ROWS[0], indent=2)), 1),
    Case(
        "json_concatenated",
        w("a.json", json.dumps(ROWS[0], indent=1) + json.dumps(ROWS[1], indent=1)),
        2,
    ),
    Case("json_array_cut", w("a.json", json.dumps(ROWS)[:-30]), 5, {"malformed_json_file": 1}),
    Case("json_deep", w("a.json", "[" * 100_000 + "]" * 100_000), 0, {"malformed_json_file": 1}),
    Case("json_scalar", w("a.json", "42"), 0, {"json_not_object": 1}),
    Case("json_bom_array", w("a.json", b"\xef\xbb\xbf" + json.dumps(ROWS[:2]).encode()), 2),
    Case(
        "json_surrogate",
        w("a.json", '[{"text": "\\udc80"}, {"text": "ok"}]'),
        1,
        {"invalid_unicode_escape": 1},
    ),  # fmt: skip
    Case(
        "json_bad_utf8",
        w("a.json", b'[{"text": "ok"}, {"text": "\xff"}]'),
        0,
        {"invalid_utf8_file": 1},
    ),
    Case("json_lines_named_json", w("a.json", jsonl(ROWS[:3])), 3),
    Case("json_empty", w("a.json", ""), 0),
    Case(
        "json_huge_value",
        w("a.json", '[{"text": "' + "z" * 3000 + '"}]'),
        0,
        {"record_too_large": 1},
        patch={"record": 1000},
    ),  # fmt: skip
]

CSV_CASES = [
    Case("csv_ok", w("a.csv", 'id,text\n1,hello\n2,"好, 很好"\n3,"multi\nline"\n'), 3),
    Case(
        "csv_extra_fields",
        w("a.csv", "id,text\n1,first part,second part\n2,ok\n"),
        1,
        {"csv_field_count": 1},
    ),  # fmt: skip
    Case("csv_short_row", w("a.csv", "id,text,label\n1\n2,ok,x\n"), 1, {"csv_field_count": 1}),
    Case(
        "csv_unclosed_quote",
        w("a.csv", 'id,text\n1,ok\n2,"never closed\n3,after\n4,later\n'),
        3,
        {"csv_unclosed_quote": 1},
    ),  # fmt: skip
    Case(
        "csv_quote_closes_late",
        w("a.csv", 'id,text\n1,"opens\n2,x\n3,"closes" badly\n4,ok\n'),
        2,
        {"csv_unclosed_quote": 2},
    ),  # fmt: skip
    Case(
        "tsv_unclosed_quote",
        w("a.tsv", 'id\ttext\n1\t"open\n2\tnext\n3\tlast\n'),
        2,
        {"csv_unclosed_quote": 1},
    ),  # fmt: skip
    Case("csv_big_field", w("a.csv", "id,text\n1," + "长" * 100_000 + "\n2,small\n"), 2),
    Case(
        "csv_bad_utf8_line3",
        w("a.csv", b"id,text\n1,ok\n2,\xff\xfe bad\n3,fine\n"),
        2,
        {"invalid_utf8_line": 1},
    ),  # fmt: skip
    Case(
        "csv_gbk",
        w("a.csv", "id,text\n1,中文\n2,句子\n".encode("gbk")),
        0,
        {"invalid_utf8_line": 2},
    ),  # fmt: skip
    Case("csv_excel_bom", w("a.csv", "\ufefftext,id\nhello,1\n"), 1),
    Case("csv_empty_cell", w("a.csv", "id,text\n1,\n2,x\n"), 2),
    Case("csv_missing_column", w("a.csv", "id,body\n1,x\n"), 0, {"missing_text_field": 1}),
    Case("csv_header_only", w("a.csv", "id,text\n"), 0),
    Case("csv_crlf_blank_lines", w("a.csv", "id,text\r\n\r\n1,a\r\n\r\n2,b\r\n"), 2),
    Case("csv_nul", w("a.csv", "id,text\n1,a\x00b\n2,c\n"), -1, {}),
    Case(
        "csv_gz_cut",
        w(
            "a.csv.gz",
            cut(
                gzip.compress(
                    b"text\n" + b"".join(f"row {i} {i * i}\n".encode() for i in range(3000))
                ),
                0.5,
            ),
        ),
        -1,
        {"corrupt_file": 1},
    ),  # fmt: skip
    Case(
        "csv_long_line",
        w("a.csv", "id,text\n1," + "y" * 3000 + "\n2,ok\n"),
        1,
        {"line_too_long": 1},
        patch={"record": 1000},
    ),  # fmt: skip
]


def _parquet(columns: dict) -> Callable[[Path], None]:
    return lambda root: table(root / "a.parquet", columns)


def _arrow(root: Path) -> None:
    import pyarrow as pa

    t = pa.table({"text": ["一", "two"]})
    with pa.ipc.new_stream(root / "data-00000-of-00001.arrow", t.schema) as writer:
        writer.write_table(t)
    (root / "state.json").write_text("{}")


TABLE_CASES = [
    Case("parquet_ok", _parquet({"text": ["a", "b"], "id": [1, 2]}), 2),
    Case("parquet_ints", _parquet({"text": [1, 2, 3]}), 0, {"text_field_not_string": 3}),
    Case("parquet_lists", _parquet({"text": [["a"], ["b"]]}), 0, {"text_field_not_string": 2}),
    Case("parquet_nulls", _parquet({"text": ["a", None, None]}), 3),
    Case("parquet_missing_column", _parquet({"body": ["a"]}), 0, {"missing_text_field": 1}),
    Case(
        "parquet_junk", w("a.parquet", b"PAR1 not really a parquet file"), 0, {"unreadable_file": 1}
    ),
    Case("arrow_dataset", _arrow, 2),
]


def _parquet_cut(root: Path) -> None:
    table(root / "full.parquet", {"text": [f"t{i}" for i in range(100)]})
    data = (root / "full.parquet").read_bytes()
    (root / "full.parquet").unlink()
    (root / "a.parquet").write_bytes(data[: len(data) // 2])


TABLE_CASES.append(Case("parquet_cut", _parquet_cut, 0, {"unreadable_file": 1}))

HTML_CASES = [
    Case("html_ok", w("a.html", PAGE), 1),
    Case("html_binary", w("a.html", b"<html>" + b"\x00\x01" * 500), 0, {"binary_file": 1}),
    Case("html_empty_page", w("a.html", "<html><body></body></html>"), 1),
    Case("html_deep", w("a.html", "<div>" * 100_000 + "deep text" + "</div>" * 100_000), 1),
    Case(
        "html_gbk",
        w("a.htm", PAGE.replace("<head>", "<head><meta charset='gbk'>").encode("gbk")),
        1,
    ),
    Case("html_gz", w("a.html.gz", gzip.compress(PAGE.encode())), 1),
]


def _warc_bad_length(root: Path) -> None:
    data = warc(22, gz=False)
    (root / "a.warc").write_bytes(data.replace(b"Content-Length: ", b"Content-Length: 1", 3))


def _warc_cut(gz: bool) -> Callable[[Path], None]:
    data = warc(22, gz)
    return w("a.warc.gz" if gz else "a.warc", data[: len(data) // 2])


def _warc_corrupt_member(root: Path) -> None:
    data = warc(4, gz=True)
    member = gzip.compress(b"WARC/1.0\r\n" + rbytes(300))
    (root / "a.warc.gz").write_bytes(data + member)


WARC_CASES = [
    Case("warc_ok", w("a.warc.gz", warc(5)), 5),
    Case("warc_plain_ok", w("a.warc", warc(3, gz=False)), 3),
    Case("warc_bad_length", _warc_bad_length, -1, {"warc_bad_length": -1}),
    Case("warc_gz_cut", _warc_cut(True), 11, {"truncated_record": 1}),
    Case("warc_plain_cut", _warc_cut(False), 11, {"truncated_record": 1}),
    Case("warc_junk", w("a.warc", "this is not a warc\n" * 10), 0, {"unreadable_file": 1}),
    Case("warc_corrupt_member", _warc_corrupt_member, 4, {"truncated_record": 1}),
    Case("warc_empty", w("a.warc", b""), 0, {"unreadable_file": 1}),
]

ZIP_CASES = [
    Case(
        "zip_folder",
        w(
            "a.zip",
            zipped(
                {
                    "b.txt": "文本",
                    "c.jsonl": jsonl(ROWS[:2]),
                    "sub/d.csv": "text\nrow\n",
                    "e.raw": "raw text",
                }
            ),
        ),
        5,
    ),  # fmt: skip
    Case(
        "zip_binary_and_hidden",
        w(
            "a.zip",
            zipped({"x.png": b"\x89PNG", "__MACOSX/._b.txt": "m", ".hid.txt": "h", "b.txt": "ok"}),
        ),
        1,
    ),  # fmt: skip
    Case("zip_corrupt", w("a.zip", b"PK\x03\x04" + rbytes(100)), 0, {"corrupt_file": 1}),
    Case(
        "zip_cut",
        w("a.zip", cut(zipped({"b.txt": rbytes(5000).hex()}), 0.5)),
        0,
        {"corrupt_file": 1},
    ),
    Case(
        "zip_member_gbk",
        w("a.zip", zipped({"b.txt": "中文".encode("gbk"), "c.txt": "ok"})),
        1,
        {"invalid_utf8_file": 1},
    ),  # fmt: skip
    Case(
        "zip_member_bad_csv",
        w("a.zip", zipped({"b.csv": "id,text\n1,a,b\n2,c\n"})),
        1,
        {"csv_field_count": 1},
    ),  # fmt: skip
]

FOLDER_CASES = [
    Case(
        "fifo",
        lambda root: (os.mkfifo(root / "pipe.txt"), (root / "b.txt").write_text("b")),
        1,
        {"not_regular_file": 1},
    ),  # fmt: skip
    Case("symlinks", _symlinks, 2, {"broken_symlink": 1, "symlink_loop": 2, "not_regular_file": 1}),
    Case("long_path", several(_long_path, w("ok.txt", "ok")), 1, {"path_too_long": 1}),
    Case("bad_file_name", w(os.fsdecode(b"caf\xe9-\xff.txt"), "name is not UTF-8"), 1),
    Case("hidden_files", several(w(".secret.txt", "x"), w(".git/config", "y"), w("a.txt", "z")), 1),
    Case("no_suffix", several(w("README", "read me"), w("LICENSE", "MIT")), 2),
    Case("unknown_ext_text", w("wiki.test.raw", " = Valkyria = \n text \n"), 1),
    Case("unknown_ext_ignored", w("wiki.test.raw", "text"), 0, read_unknown=False),
    Case("unknown_ext_binary", w("blob.dat", rbytes(100) + b"\x00" * 100), 0),
    Case("unknown_ext_latin1", w("notes.log", "Café crème".encode("latin-1") * 20), 0),
    Case("known_binary", several(w("a.png", b"\x89PNG\r\n"), w("b.pdf", "%PDF-1.4")), 0),
    Case("empty_folder", lambda root: (root / "sub").mkdir(), 0),
    Case(
        "mixed_folder",
        several(
            w("a.txt", "x"),
            w("b.jsonl", jsonl(ROWS[:2])),
            w("c/d.csv", "text\ny\n"),
            w("e.html", PAGE),
        ),
        5,
    ),  # fmt: skip
]

CASES = (TEXT_CASES + JSONL_CASES + JSON_CASES + CSV_CASES + TABLE_CASES + HTML_CASES
         + WARC_CASES + ZIP_CASES + FOLDER_CASES)  # fmt: skip


def problem_counts(problems) -> Counter:  # type: ignore[no-untyped-def]
    return Counter(problems.counts)
