"""The spine end to end: prepare → train → checkpoint → generate → eval, exact resume, golden
loss, and clear errors for user mistakes (through the CLI, as a user meets them)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from llmtrain.cli.main import main
from llmtrain.monitor.metrics import read_metrics

from .conftest import tiny_overrides


def sets(overrides: list[str]) -> list[str]:
    out = []
    for o in overrides:
        out += ["--set", o]
    return out


def train_cli(data, run, steps: int = 20) -> int:
    """`llmtrain train` of the tiny config on `data` into `run`; returns the exit code."""
    argv = ["train", "--data", str(data), "--out", str(run), "--quiet"]
    return main(argv + sets(tiny_overrides(data, steps=steps)))


def test_end_to_end_cli(char_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_cli(char_data, run) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["vocab_size"] > 4 and cfg["train"]["max_steps"] == 20
    records = read_metrics(run / "metrics.jsonl")
    train_recs = [r for r in records if "loss" in r]
    eval_recs = [r for r in records if "val_loss" in r]
    assert len(train_recs) == 20 and len(eval_recs) == 2
    for key in ("step", "tokens", "loss", "lr", "grad_norm", "tokens_per_sec", "elapsed_sec"):
        assert key in train_recs[0]
    assert {"val_loss", "val_ppl", "val_bpb"} <= set(eval_recs[-1])
    assert train_recs[-1]["loss"] < train_recs[0]["loss"]  # it learns
    assert (run / "checkpoints" / "step_000020" / "model.safetensors").is_file()
    capsys.readouterr()

    assert (
        main(["generate", str(run), "--prompt", "the ", "--max-new-tokens", "30", "--seed", "1"])
        == 0
    )
    text = capsys.readouterr().out
    assert text.startswith("the ") and len(text) > 10

    assert main(["eval", str(run), "--data", str(char_data)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["step"] == 20 and res["loss"] > 0 and res["bpb"] > 0
    assert res["ppl"] == pytest.approx(torch.tensor(res["loss"]).exp().item(), rel=1e-5)


def _train(data, run, steps, resume=False, extra=()):
    argv = [
        "train",
        "--data",
        str(data),
        "--out",
        str(run),
        "--quiet",
        *sets(tiny_overrides(data, steps=10, **{"model.dropout": 0.1}, **dict(extra))),
    ]
    argv += ["--set", f"train.max_steps={steps}"]
    if resume:
        argv.append("--resume")
    assert main(argv) == 0


def test_resume_is_bitwise_exact(char_data, tmp_path):
    # dropout on, so the RNG state must be restored too; lr schedule over 10 steps in both
    straight, split = tmp_path / "straight", tmp_path / "split"
    _train(char_data, straight, 10, extra={"train.checkpoint_every": 5})
    _train(char_data, split, 5, extra={"train.lr_decay_steps": 10, "train.checkpoint_every": 5})
    _train(char_data, split, 10, resume=True)
    a = load_file(straight / "checkpoints" / "step_000010" / "model.safetensors")
    b = load_file(split / "checkpoints" / "step_000010" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    la = [r["loss"] for r in read_metrics(straight / "metrics.jsonl") if "loss" in r]
    lb = [r["loss"] for r in read_metrics(split / "metrics.jsonl") if "loss" in r]
    assert la == lb and len(la) == 10  # no duplicated or missing log lines either


def test_golden_loss(char_data, tmp_path):
    """Pins the numerics of the whole path (data order, init, loss, AdamW, schedule): any
    change to them moves these numbers. Update the constants only for an intended change."""
    run = tmp_path / "golden"
    assert train_cli(char_data, run, steps=20) == 0
    losses = [r["loss"] for r in read_metrics(run / "metrics.jsonl") if "loss" in r]
    print("golden losses", losses[0], losses[9], losses[19])
    assert losses[0] == pytest.approx(GOLDEN[0], abs=2e-4)
    assert losses[9] == pytest.approx(GOLDEN[1], abs=2e-4)
    assert losses[19] == pytest.approx(GOLDEN[2], abs=2e-4)


GOLDEN = (4.043769, 3.377514, 3.236588)


def test_existing_run_without_resume_is_refused(char_data, tmp_path, capsys):
    run = tmp_path / "r"
    _train(char_data, run, 10)
    capsys.readouterr()
    argv = [
        "train",
        "--data",
        str(char_data),
        "--out",
        str(run),
        "--quiet",
        *sets(tiny_overrides(char_data, steps=10)),
    ]
    assert main(argv) == 2
    assert "pass --resume" in capsys.readouterr().err


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("train.lrr=1", "unknown config key 'train.lrr'; did you mean 'train.lr'"),
        ("model.n_embd=33", "model.n_embd (33) must be divisible by model.n_head (2)"),
        ("train.batch_size=7", "train.batch_size (7) must be a multiple of train.micro_batch_size"),
    ],
)
def test_bad_config_is_one_clear_line(char_data, tmp_path, capsys, override, fragment):
    argv = [
        "train",
        "--data",
        str(char_data),
        "--out",
        str(tmp_path / "x"),
        *sets(tiny_overrides(char_data)),
        "--set",
        override,
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err
    assert not (tmp_path / "x" / "config.json").exists()


def test_missing_data_dir(tmp_path, capsys):
    argv = ["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]
    assert main([*argv, "--preset", "gpt2-tiny"]) == 2
    assert "llmtrain prepare" in capsys.readouterr().err


def test_corrupt_checkpoint_via_cli(char_data, tmp_path, capsys):
    run = tmp_path / "c"
    _train(char_data, run, 10)
    (run / "checkpoints" / "step_000010" / "model.safetensors").write_bytes(b"\x00" * 64)
    capsys.readouterr()
    assert main(["generate", str(run), "--prompt", "a"]) == 2
    err = capsys.readouterr().err
    assert "corrupt" in err and "step_000010" in err and "Traceback" not in err
    assert main(["train", "--data", str(char_data), "--out", str(run), "--resume", "--quiet"]) == 2
