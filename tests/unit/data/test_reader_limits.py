"""Reader limits and places: memory stays bounded on huge one-line and NUL files (measured in
a subprocess), long texts come back whole in pieces and resume inside them, an unreadable
file or folder is named as such, a FIFO given by name is refused, and the advice for a file
that is not UTF-8 names an encoding that fits it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from llmtrain.data.prepare import Problems, Reader, plan_inputs, readers
from llmtrain.data.prepare.readers import ReadPosition
from llmtrain.data.prepare.sniff import guess_encoding
from llmtrain.errors import DataError

from .conftest import SHARED_DATA, needs_corpus

_MEASURE = """
import json, resource, sys
from llmtrain.data.prepare import Problems, Reader, plan_inputs, readers
readers.MAX_DOCUMENT_BYTES = 1 << 20
problems = Problems(True)
reader = Reader(plan_inputs([sys.argv[1]]), "text", problems)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
docs = sum(1 for _ in reader)
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
print(json.dumps([docs, dict(problems.counts), grown // 1024, sum(problems.lost.values())]))
"""


def _peak_growth_mib(path: Path) -> list:
    """[documents, bad inputs by kind, peak RSS growth in MiB, lost bytes] reading `path`."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3] / "src")}
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], env=env, check=True,
                         capture_output=True, text=True, timeout=60).stdout  # fmt: skip
    return json.loads(out)


def test_huge_single_line_and_nul_files_stay_small(tmp_path):
    line = tmp_path / "line.txt"
    with open(line, "wb") as f:
        for _ in range(48):
            f.write(b"x" * (1 << 20))  # 48 MiB, one line, no space
    docs, problems, grown, lost = _peak_growth_mib(line)
    assert docs == 48 and problems == {} and lost == 0 and grown < 24, grown  # 1 MiB pieces
    nul = tmp_path / "nul.txt"
    with open(nul, "wb") as f:
        f.truncate(1 << 30)  # 1 GiB of NUL bytes, sparse
    docs, problems, grown, lost = _peak_growth_mib(nul)
    assert docs == 0 and problems == {"binary_file": 1} and grown < 24, grown
    assert lost == 1 << 30  # the whole file reached no document


def test_long_text_pieces_join_back_and_resume_inside(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "MAX_DOCUMENT_BYTES", 500)
    text = "".join(f"第{i}段 paragraph {i} " * 7 + "\n\n" for i in range(60))
    (tmp_path / "a.txt").write_text(text, encoding="utf-8")
    plan = plan_inputs([tmp_path / "a.txt"])
    reader = Reader(plan, "text", Problems(False))
    docs, marks = [], []
    for doc in reader:
        docs.append(doc.text)
        marks.append(ReadPosition(**vars(reader.position)))
    assert len(docs) > 10 and "".join(docs) == text
    again = Reader(plan, "text", Problems(False), start=marks[4])
    assert [d.text for d in again] == docs[5:]


def test_permission_denied_is_not_called_corrupt(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("y")
    real_open, real_scandir = os.open, os.scandir

    def deny_open(path, *a, **kw):
        if str(path).endswith("a.txt"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **kw)

    def deny_scandir(path="."):
        if str(path).endswith("sub"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "open", deny_open)
    monkeypatch.setattr(os, "scandir", deny_scandir)
    problems = Problems(True)
    docs = list(Reader(plan_inputs([tmp_path]), "text", problems))
    assert docs == [] and problems.counts == {"permission_denied": 2}
    assert all("re-download" not in i["detail"].lower() for i in problems.items)


def test_fifo_named_as_input_is_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe.txt")
    with pytest.raises(DataError, match="not a regular file"):
        plan_inputs([tmp_path / "pipe.txt"])


def test_unknown_extension_read_unless_ignored(tmp_path):
    (tmp_path / "wiki.train.raw").write_text(" = Title = \n 文本 \n", encoding="utf-8")
    assert len(plan_inputs([tmp_path]).files) == 1
    plan = plan_inputs([tmp_path], read_unknown=False)
    assert plan.files == [] and plan.unsupported == {".raw": 1}
    assert len(plan_inputs([tmp_path / "wiki.train.raw"]).files) == 1  # named: read as text


@pytest.mark.parametrize(
    "text,encoding,advice",
    [("Café crème brûlée à la façade, déjà vu.\n" * 20, "latin-1", "CP1252"),
     ("Привет, как дела? Это проверка кодировки.\n" * 10, "cp1251", "CP1251"),
     ("语言模型从大量文本中学习，预测下一个字符。" * 10, "gbk", "GB18030")],
)  # fmt: skip
def test_encoding_guess_fits_the_file(text, encoding, advice):
    assert guess_encoding(text.encode(encoding)) == advice


def test_zip_is_read_like_a_folder(tmp_path):
    with zipfile.ZipFile(tmp_path / "c.zip", "w") as z:
        z.writestr("corpus/b.txt", "乙 second")
        z.writestr("corpus/a.txt", "甲 first")
        z.writestr("corpus/README", "about")
    docs = list(Reader(plan_inputs([tmp_path]), "text", Problems(False)))
    assert [d.text for d in docs] == ["about", "甲 first", "乙 second"]
    assert docs[1].id.endswith("c.zip/corpus/a.txt")


@pytest.mark.corpus
@needs_corpus
def test_nltk_zip_corpora_are_read():
    problems = Problems(True)
    reader = Reader(plan_inputs([SHARED_DATA / "en_prose"]), "text", problems)
    docs = list(reader)
    assert len(docs) > 1000 and sum(len(d.text) for d in docs) > 5_000_000
    assert set(problems.counts) <= {"invalid_utf8_file"}  # a few files there are not UTF-8
    assert all(".zip/" in f for f in problems.lost)  # lost bytes per member, not per archive
