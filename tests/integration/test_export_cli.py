"""`llmtrain export RUN --format hf --out DIR` end to end: a trained run is written with its
(char) tokenizer, reloaded by transformers with matching logits and ids; a target the model
cannot be written as is refused with the reason (exit 2, no traceback)."""

from __future__ import annotations

import json

import pytest

from llmtrain.cli.main import main
from llmtrain.tokenizer import load_tokenizer

from .conftest import ZH, tiny_overrides

transformers = pytest.importorskip("transformers")


def test_export_cli_writes_a_verified_hf_dir(char_data, tmp_path, capsys):
    run = tmp_path / "run"
    sets = tiny_overrides(
        char_data,
        2,
        **{
            "model.pos_embedding": '"rope"',
            "model.norm": '"rmsnorm"',
            "model.mlp": '"swiglu"',
            "model.bias": "false",
        },
    )
    argv = ["train", "--out", str(run), "--quiet"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    capsys.readouterr()
    bad = ["export", str(run), "--out", str(tmp_path / "x"), "--target", "roberta"]
    assert main(bad) == 2
    assert "RoBERTa needs" in capsys.readouterr().err
    out = tmp_path / "hf"
    assert main(["export", str(run), "--format", "hf", "--out", str(out)]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["target"] == "llama" and res["max_abs_diff"] <= 1e-4
    assert res["tokenizer_texts_checked"] >= 5
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    ours = load_tokenizer(run / "tokenizer")
    for text in ("the model reads text and learns.", ZH[:12] + "。"):
        assert hf_tok(text)["input_ids"] == ours.encode(text)
    assert main(["export", str(run), "--out", str(tmp_path / "w"), "--no-tokenizer"]) == 0
    assert not (tmp_path / "w" / "tokenizer.json").exists()
