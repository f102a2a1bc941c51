"""`llmtrain demo` on a user corpus, shrunk so it runs in seconds."""

from __future__ import annotations

from llmtrain.cli.main import main

from .conftest import synthetic_corpus


def test_demo_on_user_corpus(tmp_path, capsys):
    corpus = synthetic_corpus(tmp_path / "raw", n_docs=30)
    shrink = [
        "model.n_layer=1",
        "model.n_head=2",
        "model.n_embd=32",
        "model.block_size=32",
        "train.batch_size=4",
        "train.micro_batch_size=4",
        "train.threads=1",
    ]
    argv = [
        "demo",
        "--corpus",
        str(corpus),
        "--out",
        str(tmp_path / "demo"),
        "--minutes",
        "0.05",
        "--tokenizer",
        "char",
    ]
    for s in shrink:
        argv += ["--set", s]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for fragment in (
        "[1/4] prepare",
        "[2/4] train",
        "[3/4] eval",
        "unigram baseline",
        "[4/4] generate",
        "outputs:",
        "metrics.jsonl",
        "checkpoint",
    ):
        assert fragment in out
    assert (tmp_path / "demo" / "run" / "metrics.jsonl").is_file()
    # a second run reuses the prepared data and starts a fresh run
    assert main(argv) == 0
    assert "reusing" in capsys.readouterr().out
