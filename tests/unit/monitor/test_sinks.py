"""Tracker naming, and a missing tracker package is a one-line hint, never a crash."""

import sys

from llmtrain.monitor.config import MonitorConfig
from llmtrain.monitor.run_monitor import RunMonitor
from llmtrain.monitor.runs import load_run
from llmtrain.monitor.sinks import open_trackers, scalars, tracker_key


def test_tracker_names():
    assert tracker_key("loss") == "train/loss" and tracker_key("val_bpb") == "val/bpb"
    assert tracker_key("tokens_per_sec") == "perf/tokens_per_sec"
    assert tracker_key("gpu_util") == "system/gpu_util"
    assert tracker_key("grad_norm/blocks.0") == "grad_norm/blocks.0"
    rec = {"step": 3, "tokens": 9, "loss": 1.0, "lr": float("nan"), "moe_load": [[1.0]]}
    assert scalars(rec) == {"train/loss": 1.0}
    assert scalars({"step": 3, "event": "checkpoint", "save_sec": 0.1}) == {}


def test_missing_tracker_packages_are_a_hint(tmp_path, monkeypatch, capsys):
    for mod in ("wandb", "mlflow", "mlflow.tracking", "torch.utils.tensorboard"):
        monkeypatch.setitem(sys.modules, mod, None)  # `import mod` now raises ImportError
    cfg = MonitorConfig(tensorboard=True, wandb=True, mlflow=True)
    assert open_trackers(cfg, tmp_path, {}) == []
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all("pip install" in line for line in err), err
    assert "continuing without it" in err[0]


def test_run_monitor_writes_jsonl_and_events(tmp_path):
    mon = RunMonitor(MonitorConfig(), tmp_path, {"train": {"max_steps": 2}})
    with mon.step(0):
        pass
    rec = {"step": 1, "tokens": 8, "loss": 2.0, "flops_per_sec": 1e9}
    rec.update(mon.measurements(rec))
    mon.log(rec)
    mon.event("checkpoint", 1, path="p")
    mon.close()
    run = load_run(tmp_path)
    assert "skipped_steps" not in run.train[0]  # no optimizer watched: skips are unknown
    assert "step_ms" in run.train[0] and run.events[0]["event"] == "checkpoint"
