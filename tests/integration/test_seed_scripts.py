"""The seed documents' entry points accept their flags verbatim."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from llmtrain.monitor.metrics import read_metrics

from .conftest import load_file, tiny_overrides

ROOT = Path(__file__).resolve().parents[2]


def load_script(name: str):
    return load_file(f"scripts/{name}.py")


def test_train_model_script_maps_seed_flags_and_warns_about_gpus(char_data, tmp_path, capsys):
    script = load_script("train_model")
    model_cfg = tmp_path / "model.json"
    model_cfg.write_text(
        json.dumps({"model": {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16}})
    )
    sets = [
        s
        for o in tiny_overrides(char_data, steps=3)
        if not o.startswith(("model.", "train.batch", "train.micro"))
        for s in ("--set", o)
    ]
    rc = script.main(
        [
            "--config",
            str(ROOT / "configs" / "training_config.json"),
            "--model_config",
            str(model_cfg),
            "--data_path",
            str(char_data),
            "--output_dir",
            str(tmp_path / "ckpt"),
            "--num_gpus",
            "8",
            "--gradient_accumulation_steps",
            "2",
            "--batch_size_per_gpu",
            "1",
            *sets,
        ]
    )
    assert rc == 0
    err = capsys.readouterr().err
    assert "--num_gpus 8" in err and "global batch of 16" in err
    cfg = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert cfg["train"]["batch_size"] == 16 and cfg["train"]["micro_batch_size"] == 1
    assert cfg["model"]["n_layer"] == 1
    assert len([r for r in read_metrics(tmp_path / "ckpt" / "metrics.jsonl") if "loss" in r]) == 3


def test_seed_train_then_seed_monitor_find_each_other(char_data, tmp_path, capsys, monkeypatch):
    """The seed commands as documented: train_model.py --output_dir models/checkpoints/, then
    monitor_training.py --log_dir logs/training_logs/ --checkpoint_dir models/checkpoints/
    shows that run and its checkpoints; --report also prints the snapshot."""
    monkeypatch.chdir(tmp_path)
    sets = [s for o in tiny_overrides(char_data, steps=2) for s in ("--set", o)]
    train = ["--data_path", str(char_data), "--output_dir", "models/checkpoints/", *sets]
    assert load_script("train_model").main(train) == 0
    capsys.readouterr()
    argv = ["--log_dir", "logs/training_logs/", "--checkpoint_dir", "models/checkpoints/"]
    script = str(ROOT / "scripts" / "monitor_training.py")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200"}
    res = subprocess.run(  # as a user runs it (no terminal: one snapshot)
        [sys.executable, script, *argv, "--report", "r.html"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode == 0, res.stderr
    assert "checkpoints (1): step_000002" in res.stdout  # the snapshot, checkpoint found
    assert (tmp_path / "r.html").is_file() and "r.html" in res.stderr


def test_prepare_corpus_help_is_whole_sentences(capsys):
    import pytest

    with pytest.raises(SystemExit):
        load_script("prepare_corpus").main(["--help"])
    out = capsys.readouterr().out
    assert "--output_dir data/processed/ \\\n" in out and "then reads." in out
