"""Readers: text and JSON-lines files, folders, builtin corpora, and the errors a user sees
for missing paths, invalid UTF-8, binary files, malformed lines and missing text fields."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from llmtrain.data.builtin import builtin_corpus_documents, python_stdlib_files
from llmtrain.data.prepare import Problems, Reader, plan_inputs
from llmtrain.data.prepare.readers import get_field
from llmtrain.errors import DataError


def read(inputs, text_field="text", skip_bad=False):
    problems = Problems(skip_bad)
    reader = Reader(plan_inputs(inputs), text_field, problems)
    return list(reader), reader, problems


def write_jsonl(path: Path, rows: list) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_text_file_is_one_document(tmp_path):
    text = "第一章\n\nIt was a dark night.\n"
    (tmp_path / "book.txt").write_text(text, encoding="utf-8")
    docs, reader, _ = read([tmp_path / "book.txt"])
    assert [d.text for d in docs] == [text]
    assert reader.stats["files_read"] == 1
    assert reader.stats["bytes_read"] == len(text.encode("utf-8"))


def test_folder_recursive_sorted_hidden_skipped(tmp_path):
    for rel in ["b.md", "a.txt", "sub/c.rst", "sub/z/d.txt", ".hidden/e.txt", ".f.txt", "g.bin"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel, encoding="utf-8")
    plan = plan_inputs([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in plan.files] == [
        "a.txt", "b.md", "sub/c.rst", "sub/z/d.txt",
    ]  # fmt: skip
    assert plan.unsupported == {".bin": 1, "(hidden)": 2}  # counted, shown on the console


def test_jsonl_nested_field_ids_and_blank_lines(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"id": 7, "m": {"t": "一"}}, "", {"m": {"t": "two"}}])
    docs, _, _ = read([path], text_field="m.t")
    assert [(d.id, d.text) for d in docs] == [("7", "一"), (f"{path.resolve()}:3", "two")]
    assert get_field({"msgs": [{"c": "x"}]}, "msgs.0.c") == "x"


def test_json_array_and_gzip(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([{"text": "α"}, {"text": "β"}]), encoding="utf-8")
    with gzip.open(tmp_path / "b.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write('{"text": "gz"}\n')
    docs, _, _ = read([tmp_path])
    assert [d.text for d in docs] == ["α", "β", "gz"]


def test_missing_input_and_unsupported_file(tmp_path):
    with pytest.raises(DataError, match=r"input path not found: .*nope\.txt"):
        plan_inputs([tmp_path / "nope.txt"])
    (tmp_path / "x.docx").write_text("a,b")
    with pytest.raises(DataError, match=r"unsupported type '\.docx'"):
        plan_inputs([tmp_path / "x.docx"])
    with pytest.raises(DataError, match="unknown built-in corpus 'builtin:perl'"):
        plan_inputs(["builtin:perl"])


def test_input_folder_inside_output_refused(tmp_path):
    with pytest.raises(DataError, match="inside the output directory"):
        plan_inputs([tmp_path / "."], exclude=tmp_path)


def test_invalid_utf8_names_path_offset_and_fix(tmp_path):
    path = tmp_path / "gbk.txt"
    path.write_bytes(b"ok line\n" + "中文".encode("gbk"))
    with pytest.raises(DataError) as e:
        read([path])
    msg = str(e.value)
    assert str(path.resolve()) in msg and "byte offset 8" in msg and "line 2" in msg
    assert "Convert the file to UTF-8" in msg and "--skip-bad-files" in msg
    docs, _, problems = read([path], skip_bad=True)
    assert docs == [] and problems.counts == {"invalid_utf8_file": 1}


def test_binary_file_refused(tmp_path):
    (tmp_path / "junk.txt").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataError, match="binary file"):
        read([tmp_path / "junk.txt"])
    (tmp_path / "u16.txt").write_bytes("hello".encode("utf-16"))
    with pytest.raises(DataError, match="UTF-16"):
        read([tmp_path / "u16.txt"])


def test_malformed_jsonl_line_names_file_line_and_keeps_rest(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "a"}, '{"text": "b"', {"text": "c"}])
    with pytest.raises(DataError, match=r"d\.jsonl:2: malformed JSON line"):
        read([path])
    docs, _, problems = read([path], skip_bad=True)
    assert [d.text for d in docs] == ["a", "c"]
    assert problems.counts == {"malformed_json_line": 1}
    assert problems.items[0]["where"].endswith("d.jsonl:2")


def test_missing_text_field_lists_keys(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"content": "x", "id": 1}])
    with pytest.raises(DataError) as e:
        read([path])
    assert "no text field 'text'" in str(e.value) and "'content', 'id'" in str(e.value)
    assert "--text-field" in str(e.value)


def test_non_string_field_and_non_object_line(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": 3}, [1, 2], {"text": "ok"}])
    docs, _, problems = read([path], skip_bad=True)
    assert [d.text for d in docs] == ["ok"]
    assert problems.counts == {"text_field_not_string": 1, "json_not_object": 1}


def test_builtin_python_corpus_skips_tests():
    files = python_stdlib_files()
    assert len(files) > 300
    assert not any(part in {"test", "tests", "idlelib"} for f in files for part in f.parts)
    first = next(builtin_corpus_documents("python"))
    assert first.source == "builtin:python" and first.id.startswith("python-stdlib/")
    assert plan_inputs(["builtin:python"]).total_bytes > 5_000_000


def test_reader_streams_the_builtin_corpus_from_the_start():
    """`llmtrain demo` reads builtin:python through the Reader with no resume position."""
    import itertools

    reader = Reader(plan_inputs(["builtin:python"]), "text", Problems(skip_bad=False))
    docs = list(itertools.islice(iter(reader), 3))
    assert len(docs) == 3 and docs[0].id.startswith("python-stdlib/")
    assert reader.stats["documents_read"] == 3
