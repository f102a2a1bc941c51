"""What `prepare` tells the user about its tokenizer: every backend reports the vocabulary
size asked and the one it got (with the reason when they differ), in report.json and on
the console."""

from __future__ import annotations

import json
import random

import pytest

from llmtrain.data.prepare import PrepareConfig, prepare_corpus
from llmtrain.tokenizer.train import vocab_report

EN = "the model reads text and learns to predict the next token from what came before"
ZH = "语言模型从大量文本中学习预测下一个字符训练需要数据和耐心"


def _corpus(tmp_path):
    rng = random.Random(0)
    words = EN.split()
    rows = [" ".join(rng.choices(words, k=40)) + " " + ZH[i % 9 :] for i in range(200)]
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps({"text": r}, ensure_ascii=False) for r in rows), "utf-8")
    return path


@pytest.mark.parametrize("kind", ["sentencepiece", "unigram", "bpe"])
def test_every_backend_reports_asked_and_got(tmp_path, capsys, kind):
    cfg = PrepareConfig(tokenizer=kind, vocab_size=5000, workers=1)
    prepare_corpus([_corpus(tmp_path)], tmp_path / "out", cfg)
    tok = json.loads((tmp_path / "out" / "report.json").read_text())["tokenizer"]
    assert tok["vocab_size_requested"] == 5000 and tok["vocab_size"] < 5000
    assert tok["vocab_size_note"].startswith(f"asked 5,000, got {tok['vocab_size']:,}")
    printed = " ".join(capsys.readouterr().out.split())  # the table wraps long cells
    assert "asked 5,000" in printed


def test_vocab_report_for_fixed_and_saved_vocabularies():
    assert vocab_report("byte", 8192, 260)["vocab_size_requested"] is None
    assert "not used" in vocab_report("char", 8192, 70)["vocab_size_note"]
    assert "saved tokenizer" in vocab_report("/some/tokenizer", 8192, 32000)["vocab_size_note"]
    assert vocab_report("wordpiece", 1000, 1000)["vocab_size_note"] is None
