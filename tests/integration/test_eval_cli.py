"""`llmtrain eval RUN` reports the run's own objective: masked-token loss and accuracy for MLM,
span metrics for T5 (which used to crash), RTD AUC for ELECTRA, sentence accuracy for SOP,
and perplexity / bits per byte only for next-token objectives."""

from __future__ import annotations

import json

import pytest
import torch

from llmtrain.cli.main import main
from llmtrain.monitor.metrics import read_metrics

from .conftest import tiny_overrides
from .test_objectives_train import FAMILIES


def train_run(data, run, objective: str, **extra: object) -> None:
    over = tiny_overrides(data, steps=2, **{"train.objective": f'"{objective}"', **extra})
    over += [f"{k}={v}" for k, v in FAMILIES.get(objective, {}).items()]
    argv = ["train", "--data", str(data), "--out", str(run), "--quiet"]
    for o in over:
        argv += ["--set", o]
    assert main(argv) == 0


def eval_json(run, data, capsys, max_tokens: int = 512, *extra: str) -> dict:
    capsys.readouterr()
    argv = ["eval", str(run), "--data", str(data), "--max-tokens", str(max_tokens), *extra]
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def last_eval(run) -> dict:
    return [r for r in read_metrics(run / "metrics.jsonl") if "val_loss" in r][-1]


def test_eval_of_a_t5_run_reports_span_metrics(char_data, tmp_path, capsys):
    """Bug: `EncoderDecoder.forward() missing 1 required positional argument: 'tgt'`."""
    train_run(char_data, tmp_path / "t5", "span")
    res = eval_json(tmp_path / "t5", char_data, capsys)
    assert res["loss"] > 0 and 0 <= res["token_acc"] <= 1 and res["targets"] > 0
    assert "ppl" not in res and "bpb" not in res
    assert res["objective"] == "span"


@pytest.mark.parametrize(
    ("objective", "keys"),
    [
        ("mlm", {"token_acc", "token_nll"}),
        ("electra", {"rtd_auc", "rtd_acc", "token_acc"}),
        ("sop", {"sentence_acc", "token_acc"}),
    ],
)
def test_eval_of_an_encoder_run_reports_its_objective(char_data, tmp_path, capsys, objective, keys):
    """Bug: MLM runs were scored as next-token predictors (loss, ppl, bpb of a causal LM)."""
    run = tmp_path / objective
    train_run(char_data, run, objective)
    res = eval_json(run, char_data, capsys)
    assert keys <= set(res), res
    assert "ppl" not in res and "bpb" not in res
    assert res["objective"] == objective
    assert all(0 <= res[k] <= 1 for k in keys if k.endswith(("_acc", "_auc")))
    ev = last_eval(run)  # the trainer's val records: the same metrics, the same path
    assert {f"val_{k}" for k in keys} <= set(ev) and not {"val_ppl", "val_bpb"} & set(ev)


@pytest.mark.parametrize("objective", ["clm", "mlm"])
def test_cli_eval_repeats_the_trainers_last_eval(char_data, tmp_path, capsys, objective):
    """One path: `llmtrain eval` on the run's own val split and token budget gives the
    numbers the trainer logged at its last step (fixed masks included)."""
    run = tmp_path / objective
    train_run(char_data, run, objective)
    budget = json.loads((run / "config.json").read_text())["train"]["eval_tokens"]
    res, ev = eval_json(run, char_data, capsys, max_tokens=budget), last_eval(run)
    assert res["loss"] == pytest.approx(ev["val_loss"], rel=1e-6)
    assert res["token_acc"] == pytest.approx(ev["val_token_acc"], rel=1e-6)
    if objective == "clm":
        assert res["bpb"] == pytest.approx(ev["val_bpb"], rel=1e-6)


@pytest.mark.parametrize("objective", ["clm", "mlm"])
def test_cli_eval_repeats_a_bf16_runs_last_eval_exactly(char_data, tmp_path, capsys, objective):
    """`llmtrain eval` evaluates under the run's own precision (bf16 autocast here), so it
    repeats the trainer's last val numbers bit for bit; it used to evaluate in fp32 (3.6998 in
    the trainer vs 3.7007 from the CLI on a t5-tiny run). --precision fp32 overrides it."""
    run = tmp_path / objective
    train_run(char_data, run, objective, **{"train.precision": "bf16"})
    budget = json.loads((run / "config.json").read_text())["train"]["eval_tokens"]
    res, ev = eval_json(run, char_data, capsys, budget), last_eval(run)
    assert res["loss"] == ev["val_loss"] and res["token_acc"] == ev["val_token_acc"]
    assert res["precision"] == "bf16"
    fp32 = eval_json(run, char_data, capsys, budget, "--precision", "fp32")
    assert fp32["precision"] == "fp32" and fp32["loss"] != ev["val_loss"]
    assert fp32["loss"] == pytest.approx(ev["val_loss"], rel=2e-2)  # the same model


def test_cli_eval_rejects_a_precision_it_cannot_use(char_data, tmp_path, capsys):
    run = tmp_path / "clm"
    train_run(char_data, run, "clm")
    cases = {"bf17": "precision 'bf17' is not one of auto, fp32, bf16, fp16"}
    if not torch.cuda.is_available():
        cases["fp16"] = "precision 'fp16' needs a CUDA GPU; on CPU use bf16, fp32 or auto"
    for value, message in cases.items():
        capsys.readouterr()
        assert main(["eval", str(run), "--precision", value]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.splitlines()) == 1
