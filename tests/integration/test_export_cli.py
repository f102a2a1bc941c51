"""`llmtrain export RUN --format hf --out DIR` end to end: a trained run is written, reloaded
by transformers with matching logits; a char tokenizer is refused with the reason."""

from __future__ import annotations

import json

import pytest

from llmtrain.cli.main import main

from .conftest import tiny_overrides

pytest.importorskip("transformers")


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
    assert main(["export", str(run), "--format", "hf", "--out", str(tmp_path / "hf")]) == 2
    assert "no Hugging Face form" in capsys.readouterr().err
    out = tmp_path / "hf2"
    assert main(["export", str(run), "--out", str(out), "--no-tokenizer"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["target"] == "llama" and res["max_abs_diff"] <= 1e-4
    assert (out / "model.safetensors").is_file()
