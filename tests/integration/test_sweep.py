"""`llmtrain sweep` end to end on the tiny English/Chinese corpus: a 3-trial sweep whose
worker is killed mid-trial and resumed by rerunning the command, median pruning stopping a
bad trial at its first eval, `--best` loading as a config, `--parallel 2` splitting the CPU
cores, and the Trainer's `on_eval` hook ending a run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmtrain.cli.main import main
from llmtrain.train.hooks import StopRun

BASE = {
    "model.n_layer": 1, "model.n_head": 2, "model.n_embd": 32, "model.block_size": 32,
    "train.batch_size": 4, "train.warmup_steps": 2, "train.min_lr": 0, "train.eval_tokens": 1024,
    "train.log_every": 5, "train.precision": "fp32", "train.threads": 1,
}  # fmt: skip


def write_spec(path: Path, data: Path, **extra) -> Path:
    spec = {
        "data": str(data),
        "base": BASE,
        "params": {"train.lr": {"low": 1e-7, "high": 3e-3, "log": True}},
        "trials": 3,
        "steps": 30,
        "eval_every": 10,
        "sampler": "random",
        "pruner": "median",
        # known values first: a good lr, one that cannot learn in 10 steps (pruned: worse
        # than the median of the complete trials there), a better one (kept)
        "start": [{"train.lr": 1e-3}, {"train.lr": 1e-7}, {"train.lr": 3e-3}],
        **extra,
    }
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}


def _study(out: Path):
    from llmtrain.sweep.study import open_study, read_spec

    return open_study(read_spec(out), out, load_only=True)


@pytest.fixture(scope="module")
def resumed_sweep(char_data, tmp_path_factory):
    """Run the sweep in a subprocess, SIGKILL it once trial 2 has started, rerun it here."""
    root = tmp_path_factory.mktemp("sweep")
    spec, out = write_spec(root / "spec.json", char_data), root / "out"
    cmd = [sys.executable, "-m", "llmtrain.cli.main", "sweep", str(spec), "--out", str(out)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not (out / "trials" / "0002").is_dir() and proc.poll() is None:
        assert time.monotonic() < deadline, "trial 2 never started"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = proc.stdout.read().decode()
    assert "trial 1 pruned at step 10/30" in first and "trial 2" not in first
    metrics0 = (out / "trials/0000/metrics.jsonl").read_bytes()
    assert main(["sweep", str(spec), "--out", str(out)]) == 0  # the same command resumes
    return out, metrics0


def test_resume_keeps_finished_trials_and_retries_the_killed_one(resumed_sweep, capsys):
    out, metrics0 = resumed_sweep
    trials = {t.number: t for t in _study(out).get_trials()}
    states = {n: t.state.name for n, t in trials.items()}
    assert states == {0: "COMPLETE", 1: "PRUNED", 2: "FAIL", 3: "COMPLETE"}
    assert trials[3].system_attrs["failed_trial"] == 2  # a retry, with the same parameters
    assert trials[3].params == trials[2].params == {"train.lr": 3e-3}
    assert (out / "trials/0000/metrics.jsonl").read_bytes() == metrics0  # not trained again


def test_pruning_stops_the_bad_trial_at_its_first_eval(resumed_sweep):
    out, _ = resumed_sweep
    pruned = _study(out).trials[1]
    assert pruned.user_attrs["steps"] == 10 and pruned.params["train.lr"] == 1e-7
    lines = (out / "trials/0001/metrics.jsonl").read_text().splitlines()
    steps = [json.loads(x)["step"] for x in lines if '"step"' in x]
    assert max(steps) == 10  # nothing trained after the pruner said stop
    assert not list((out / "trials/0001").glob("checkpoints/*"))


def test_best_prints_a_config_that_train_accepts(resumed_sweep, capsys, tmp_path):
    from llmtrain.train.config import load_run_config

    out, _ = resumed_sweep
    capsys.readouterr()
    assert main(["sweep", "--best", str(out)]) == 0
    text = capsys.readouterr().out
    best = tmp_path / "best.json"
    best.write_text(text, encoding="utf-8")
    cfg = load_run_config([best])
    assert cfg.train.lr == _study(out).best_params["train.lr"] and cfg.train.max_steps == 30
    assert json.loads((out / "best_config.json").read_text()) == json.loads(text)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Parameter importance" in page and "#1 pruned" in page


def test_parallel_two_workers_split_the_cpu(char_data, tmp_path, capsys):
    from llmtrain.sweep.resources import available_cores

    spec = write_spec(tmp_path / "spec.json", char_data, trials=2, steps=10, pruner="none",
                      start=[])  # fmt: skip
    out = tmp_path / "out"
    os.environ.update({k: v for k, v in _env().items() if k == "PYTHONPATH"})
    assert main(["sweep", str(spec), "--out", str(out), "--parallel", "2", "--device", "cpu"]) == 0
    trials = _study(out).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 2
    assert len({t.user_attrs["pid"] for t in trials}) == 2  # two worker processes shared it
    assert trials[0].params != trials[1].params  # each worker samples with its own seed
    want = max(1, available_cores() // 2)
    for t in trials:
        cfg = json.loads((out / t.user_attrs["run_dir"] / "config.json").read_text())
        assert cfg["train"]["threads"] == want
    assert "worker 1 on cpu x" in capsys.readouterr().out


def test_on_eval_hook_stops_the_run(char_data, tmp_path):
    from llmtrain.checkpoint import RunDirLock
    from llmtrain.train.config import load_run_config
    from llmtrain.train.trainer import Trainer

    from .conftest import tiny_overrides

    seen = []

    def hook(rec):
        seen.append(rec["step"])
        if rec["step"] == 10:
            raise StopRun("enough")

    cfg = load_run_config([], None, tiny_overrides(char_data, steps=30))
    trainer = Trainer(cfg, tmp_path / "run", show_progress=False, on_eval=hook)
    with pytest.raises(StopRun):
        trainer.fit()
    assert seen == [10] and trainer.step == 10
    RunDirLock(tmp_path / "run").acquire().release()  # fit() let go of the run directory


def test_a_diverging_trial_is_pruned_and_the_sweep_goes_on(char_data, tmp_path):
    stop_at_first_spike = {"stability.max_bad_steps": 1, "stability.rollback_after": 0,
                           "stability.spike_min_history": 2}  # fmt: skip
    spec = write_spec(tmp_path / "spec.json", char_data, trials=2, steps=10, pruner="none",
                      base={**BASE, **stop_at_first_spike},
                      params={"train.lr": {"low": 1e-3, "high": 1e4, "log": True}},
                      start=[{"train.lr": 1e4}, {"train.lr": 1e-3}])  # fmt: skip
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 0
    bad, good = _study(tmp_path / "out").trials
    assert bad.state.name == "PRUNED" and "diverged" in bad.user_attrs
    assert good.state.name == "COMPLETE"


def test_sigterm_mid_trial_queues_it_again_instead_of_a_partial_result(char_data, tmp_path):
    spec = write_spec(tmp_path / "spec.json", char_data, trials=1, steps=2000, pruner="none",
                      start=[{"train.lr": 1e-3}])  # fmt: skip
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "llmtrain.cli.main", "sweep", str(spec), "--out", str(out)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    metrics = out / "trials/0000/metrics.jsonl"

    def training() -> bool:  # a train record: the loop (and its signal handler) is running
        return metrics.is_file() and '"loss"' in metrics.read_text()

    while not training() and proc.poll() is None:
        assert time.monotonic() < deadline, "trial 0 never started"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert err.decode().strip().endswith("(the trial is queued again)")
    assert "Traceback" not in err.decode()
    first, retry = _study(out).get_trials()
    assert first.state.name == "FAIL" and retry.state.name == "WAITING"
    assert retry.system_attrs["fixed_params"] == first.params == {"train.lr": 1e-3}
