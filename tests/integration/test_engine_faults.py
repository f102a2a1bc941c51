"""Faults the engine survives, end to end on the tiny corpus: a NaN at step k is skipped and
training goes on; NaNs that persist stop the run with a diagnosis; SIGTERM finishes the step,
checkpoints and exits 75, and --resume then matches an uninterrupted run bitwise; a
--max-time deadline checkpoints and stops; a second writer on the same run dir is refused;
and the kill-and-resume reliability script (short form) ends on the same curve bitwise."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from llmtrain.cli.main import main
from llmtrain.errors import ConfigError
from llmtrain.monitor.metrics import read_metrics
from llmtrain.train.config import load_run_config
from llmtrain.train.faults import TrainingDivergedError
from llmtrain.train.signals import EXIT_PREEMPTED
from llmtrain.train.trainer import Trainer

from .conftest import tiny_overrides

ROOT = Path(__file__).resolve().parents[2]


def trainer(data: Path, run: Path, steps: int = 8, resume: bool = False, **extra) -> Trainer:
    sets = {"train.lr_decay_steps": 8, "train.eval_every": 100, "train.checkpoint_every": 4}
    cfg = load_run_config(overrides=tiny_overrides(data, steps=steps, **{**sets, **extra}))
    return Trainer(cfg, run, resume=resume, show_progress=False)


def poison(tr: Trainer, at_steps: set[int], action=None) -> None:
    """Make the loss NaN (or run `action`) while the trainer is at one of `at_steps`."""
    loss = tr.objective.loss

    def wrapped(out, batch, **kw):
        s, n = loss(out, batch, **kw)
        if tr.step in at_steps:
            if action is not None:
                action()
                return s, n
            return s * math.nan, n
        return s, n

    tr.objective.loss = wrapped


def train_losses(run: Path) -> list[float]:
    return [r["loss"] for r in read_metrics(run / "metrics.jsonl") if "loss" in r]


def test_nan_step_is_skipped_and_training_goes_on(char_data, tmp_path):
    tr = trainer(char_data, tmp_path / "run")
    poison(tr, {3})
    tr.fit()
    recs = read_metrics(tmp_path / "run" / "metrics.jsonl")
    skips = [r for r in recs if r.get("event") == "skipped_step"]
    assert [(r["step"], r["reason"]) for r in skips] == [(4, "nonfinite")]
    assert tr.step == 8 and [r for r in recs if "loss" in r][-1]["skipped_steps"] == 1
    assert all(torch.isfinite(p).all() for p in tr.model.parameters())
    assert math.isfinite(train_losses(tmp_path / "run")[-1])


def test_persistent_nan_stops_with_a_diagnosis(char_data, tmp_path):
    tr = trainer(char_data, tmp_path / "run", **{"stability.max_bad_steps": 3})
    poison(tr, set(range(2, 8)))
    with pytest.raises(TrainingDivergedError, match="3 steps in a row were skipped"):
        tr.fit()


def _marker(signum, frame):  # a handler of the caller's, which fit() must put back
    raise AssertionError(f"signal {signum} reached the caller's handler")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_checkpoints_exits_75_and_resume_is_exact(char_data, tmp_path, capsys, sig):
    trainer(char_data, tmp_path / "straight").fit()
    tr = trainer(char_data, tmp_path / "split")
    sent: list[int] = []  # once: the loss runs per micro-batch, and a 2nd Ctrl-C aborts
    poison(tr, {2}, action=lambda: sent or (sent.append(sig), os.kill(os.getpid(), sig)))
    before = {s: signal.signal(s, _marker) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        out = tr.fit()
        after = {s: signal.getsignal(s) for s in before}
    finally:
        for s, h in before.items():
            signal.signal(s, h)
    assert after == {signal.SIGTERM: _marker, signal.SIGINT: _marker}  # restored, not left
    assert out["step"] == 3 and tr.stop.exit_code == EXIT_PREEMPTED == 75
    assert (tmp_path / "split" / "checkpoints" / "step_000003").is_dir()
    capsys.readouterr()
    trainer(char_data, tmp_path / "split", resume=True).fit()
    ckpt = tmp_path / "split" / "checkpoints" / "step_000003"
    assert f"resuming from step 3 (checkpoint {ckpt})" in capsys.readouterr().out
    assert train_losses(tmp_path / "split") == train_losses(tmp_path / "straight")


def test_second_ctrl_c_aborts_at_once(char_data, tmp_path):
    tr = trainer(char_data, tmp_path / "run")
    kill = lambda: os.kill(os.getpid(), signal.SIGINT)  # noqa: E731
    poison(tr, {2}, action=lambda: (kill(), kill()))
    with pytest.raises(KeyboardInterrupt):
        tr.fit()
    assert not (tmp_path / "run" / "checkpoints" / "step_000003").exists()


def test_max_time_deadline_checkpoints_and_stops(char_data, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--data", str(char_data), "--out", str(run), "--quiet", "--max-time", "0s"]
    for o in tiny_overrides(char_data, steps=8):
        argv += ["--set", o]
    assert main(argv) == 0
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_000001"]
    out, err = capsys.readouterr()
    assert "stopped (deadline)" in err and "step 1: val loss" in err  # a final eval


def test_deadline_result_reports_the_last_step_not_the_last_eval(char_data, tmp_path):
    tr = trainer(char_data, tmp_path / "run", steps=8, **{"train.eval_every": 2})
    poison(tr, {4}, action=lambda: setattr(tr.stop, "max_time_sec", 0.0))
    out = tr.fit()
    evals = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "val_loss" in r]
    assert out["step"] == 5 and out["eval_step"] == 5 and evals[-1]["step"] == 5
    assert (tmp_path / "run" / "checkpoints" / "step_000005").is_dir()


def test_second_writer_on_a_run_dir_is_refused(char_data, tmp_path):
    first = trainer(char_data, tmp_path / "run")
    # `with first` holds the lock as fit() does while it trains
    with first, pytest.raises(ConfigError, match="in use by another training process"):
        trainer(char_data, tmp_path / "run")
    first.fit()  # takes and releases the lock
    trainer(char_data, tmp_path / "run", steps=9, resume=True).fit()


def test_a_trainer_that_never_ran_leaves_the_run_dir_unlocked(char_data, tmp_path):
    tr = trainer(char_data, tmp_path / "run")
    del tr  # a notebook: built, never fitted (and maybe still referenced elsewhere)
    trainer(char_data, tmp_path / "run").fit()


def test_reliability_script_short_form(char_data, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "reliability_kill_resume.py")]
        + ["--data", str(char_data), "--kills", "2", "--steps", "12", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and result["equal"] is True, proc.stdout + proc.stderr[-2000:]
    assert result["resumes"] == 2
