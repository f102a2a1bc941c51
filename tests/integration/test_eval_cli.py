"""`llmtrain eval RUN` reports the run's own objective: masked-token loss and accuracy for MLM,
span metrics for T5 (which used to crash), RTD AUC for ELECTRA, sentence accuracy for SOP,
and perplexity / bits per byte only for next-token objectives."""

from __future__ import annotations

import json

import pytest

from llmtrain.cli.main import main
from llmtrain.monitor.metrics import read_metrics

from .conftest import tiny_overrides
from .test_objectives_train import FAMILIES


def train_run(data, run, objective: str) -> None:
    over = tiny_overrides(data, steps=2, **{"train.objective": f'"{objective}"'})
    over += [f"{k}={v}" for k, v in FAMILIES.get(objective, {}).items()]
    argv = ["train", "--data", str(data), "--out", str(run), "--quiet"]
    for o in over:
        argv += ["--set", o]
    assert main(argv) == 0


def eval_json(run, data, capsys, max_tokens: int = 512) -> dict:
    capsys.readouterr()
    argv = ["eval", str(run), "--data", str(data), "--max-tokens", str(max_tokens)]
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
