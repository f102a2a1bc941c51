"""`llmtrain prepare` repairs mojibake (UTF-8 text decoded as cp1252 / Latin-1) in English and
Chinese documents by default, counts it in the report, and keeps it with --no-fix-encoding."""

from __future__ import annotations

import json

from llmtrain.cli.main import main

GOOD = [
    "The café in München serves naïve art lovers — and their dogs.",
    "中文维基百科是一个自由的百科全书，任何人都可以编辑。",
    "Plain ASCII text stays exactly as it was written.",
]


def _prepare(tmp_path, *flags: str) -> tuple[list[str], dict]:
    raw = tmp_path / "raw.jsonl"
    broken = [GOOD[0].encode().decode("cp1252"), GOOD[1].encode().decode("latin-1"), GOOD[2]]
    raw.write_text("".join(json.dumps({"text": t}) + "\n" for t in broken), encoding="utf-8")
    out = tmp_path / ("keep" if flags else "fix")
    argv = ["prepare", str(raw), "--out", str(out), "--tokenizer", "byte", "--keep-text"]
    assert main([*argv, "--quiet", *flags]) == 0
    docs = [json.loads(line)["text"] for line in (out / "documents.jsonl").open()]
    steps = {s["name"]: s for s in json.loads((out / "report.json").read_text())["steps"]}
    return sorted(docs), steps["normalise"]


def test_prepare_repairs_mojibake(tmp_path):
    docs, normalise = _prepare(tmp_path)
    assert docs == sorted(GOOD)
    assert normalise["fixed_mojibake"] == 2


def test_prepare_no_fix_encoding_keeps_text(tmp_path):
    docs, normalise = _prepare(tmp_path, "--no-fix-encoding")
    assert GOOD[0] not in docs and GOOD[0].encode().decode("cp1252") in docs
    assert "fixed_mojibake" not in normalise
