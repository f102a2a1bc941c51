"""Reading runs (torn lines, NaN strings, truncation on resume) and the dashboard's text."""

import json
import math

import pytest
from rich.console import Console

from llmtrain.errors import LLMTrainError
from llmtrain.monitor.dashboard import Dashboard, hms, sparkline
from llmtrain.monitor.metrics import MetricsLogger
from llmtrain.monitor.runs import MetricsTail, find_runs, load_run


def _write_run(d, n=30, max_steps=100):
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps({"train": {"max_steps": max_steps}}))
    log = MetricsLogger(d / "metrics.jsonl")
    for s in range(1, n + 1):
        log.log(
            {
                "step": s,
                "tokens": 100 * s,
                "loss": 5.0 / s,
                "lr": 1e-3,
                "tokens_per_sec": 1000.0,
                "elapsed_sec": 0.1 * s,
            }
        )
    log.log({"step": n, "tokens": 100 * n, "val_loss": 0.5, "val_bpb": 0.7, "elapsed_sec": 1})
    log.log({"step": n, "event": "checkpoint", "path": "x"})
    log.close()
    return d


def test_metrics_tail_reads_only_complete_lines_and_restarts_on_truncation(tmp_path):
    p = tmp_path / "metrics.jsonl"
    tail = MetricsTail(p)
    assert tail.poll() == []
    p.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo')
    assert [r["step"] for r in tail.poll()] == [1]
    with p.open("a") as fh:
        fh.write('ss": "nan"}\n')
    (rec,) = tail.poll()
    assert rec["step"] == 2 and math.isnan(rec["loss"])
    p.write_text('{"step": 1, "loss": 3.0}\n')  # a resumed run truncated the log
    assert [r["loss"] for r in tail.poll()] == [3.0] and tail.reset


def test_load_run_splits_records_and_finds_runs(tmp_path):
    d = _write_run(tmp_path / "runs" / "a")
    _write_run(tmp_path / "runs" / "b")
    run = load_run(d)
    assert (len(run.train), len(run.evals), len(run.events)) == (30, 1, 1)
    assert run.step == 30 and run.max_steps == 100
    assert run.eta_sec() == pytest.approx(70 * 0.1)
    assert find_runs([tmp_path / "runs"]) == [tmp_path / "runs" / "a", tmp_path / "runs" / "b"]
    assert find_runs([d / "metrics.jsonl"]) == [d]
    with pytest.raises(LLMTrainError, match="not a run directory"):
        find_runs([tmp_path])


def test_sparkline_and_hms():
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([3, 3, 3]) == "▁▁▁"
    assert sparkline([1.0, math.nan, 2.0]) == "▁×█"
    assert len(sparkline(list(range(1000)), width=40)) == 40
    assert hms(3725) == "1h02m05s" and hms(65) == "1m05s" and hms(None) == "-"


def test_dashboard_renders_step_eta_sparkline_and_checkpoints(tmp_path):
    d = _write_run(tmp_path / "r")
    (d / "checkpoints" / "step_000030").mkdir(parents=True)
    (d / "checkpoints" / "step_000030" / "state.json").write_text("{}")
    board = Dashboard([d])
    assert board.poll()
    console = Console(width=120, record=True, force_terminal=False)
    console.print(board.renderable(120))
    text = console.export_text()
    assert "step 30/100" in text and "ETA 0m07s" in text
    assert "0.1667" in text and "step_000030" in text and "val bpb" in text
    with (d / "metrics.jsonl").open("a") as fh:
        fh.write(json.dumps({"step": 31, "loss": 0.15, "elapsed_sec": 3.1}) + "\n")
    assert board.poll() and board.runs[0].step == 31
    assert not board.poll()
