"""Sync-free steps (`train.sync_free`, train/step_stats.py) take exactly the guard's decisions
of the synchronous path: the same skipped steps, the same rollback, the same divergence stop,
bitwise-equal weights. Forced on here on the CPU (fused AdamW) with sparse log steps, so the
late read — a step's values settled inside the next step — is what runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from llmtrain.monitor.metrics import read_metrics
from llmtrain.train.faults import TrainingDivergedError

from . import test_engine_rollback as rollback
from .test_engine_rollback import BAD, corrupt, trainer

kept_data = rollback.kept_data  # the same module-scoped corpus fixture

SPARSE = {"train.log_every": 1000, "train.checkpoint_every": 5, "optim.implementation": "fused"}


def run_pair(data: Path, root: Path, bad: range, **extra) -> list[tuple]:
    """Train the same corrupted run synchronously and sync-free; return both outcomes."""
    outcomes = []
    for mode in ("off", "on"):
        tr = trainer(data, root / mode, **{**SPARSE, "train.sync_free": mode, **extra})
        assert (tr.deferred is not None) == (mode == "on")
        corrupt(tr, bad)
        try:
            result = tr.fit()["step"]
        except TrainingDivergedError as e:
            result = str(e)
        recs = read_metrics(root / mode / "metrics.jsonl")
        events = [(r["event"], r["step"], r.get("reason"), r.get("loss")) for r in recs
                  if r.get("event") not in (None, "checkpoint")]  # fmt: skip
        train = [(r["step"], r["loss"], r["grad_norm"], r.get("skipped_steps")) for r in recs
                 if "loss" in r and "event" not in r]  # fmt: skip
        weights = {k: v.clone() for k, v in tr.model.state_dict().items()}
        windows = root / mode / "bad_windows.jsonl"
        bad_windows = (
            windows.read_text().replace(str(root / mode), "RUN") if windows.exists() else ""
        )
        outcomes.append((result, events, train, weights, bad_windows))
    return outcomes


def assert_same(sync: tuple, free: tuple) -> None:
    assert sync[0] == free[0]
    assert sync[1] == free[1] and sync[2] == free[2]
    assert sync[4] == free[4]
    for k, v in sync[3].items():
        assert torch.equal(v, free[3][k]), k


def test_spike_rollback_is_decided_identically_without_host_reads(kept_data, tmp_path):
    sync, free = run_pair(kept_data, tmp_path, BAD)
    assert sync[0] == 24
    kinds = [e[0] for e in sync[1]]
    assert kinds[:3] == ["skipped_step", "skipped_step", "rollback"]
    assert json.loads(sync[4].splitlines()[0])["to_step"] == 10  # the checkpoint at step 10
    assert_same(sync, free)


def test_persisting_spikes_stop_the_run_at_the_same_step(kept_data, tmp_path):
    over = {"stability.max_rollbacks": 1, "stability.max_bad_steps": 3}
    sync, free = run_pair(kept_data, tmp_path, range(80, 10**6), **over)
    assert "after 1 rollback(s)" in sync[0]
    assert_same(sync, free)


@pytest.mark.parametrize("log_every", [1000, 1])  # read a step late inside, or at, log steps
def test_nonfinite_steps_are_skipped_on_the_device(kept_data, tmp_path, log_every):
    over = {"stability.rollback_after": 0, "stability.max_bad_steps": 5}
    extra = {"train.lr": 1e30, "train.log_every": log_every}
    sync, free = run_pair(kept_data, tmp_path, range(0), **over, **extra)
    assert any(e[2] == "nonfinite" for e in sync[1])
    if log_every == 1:  # the run diverges before step 1000: no train record to read then
        assert sync[2][-1][3] == sum(e[0] == "skipped_step" for e in sync[1]) > 0  # counted
    assert_same(sync, free)


def test_sync_free_on_needs_a_fused_adam(kept_data, tmp_path):
    from llmtrain.errors import ConfigError

    with pytest.raises(ConfigError, match="sync_free=on needs optim.implementation=fused"):
        trainer(
            kept_data,
            tmp_path / "r",
            **{"train.sync_free": "on", "optim.implementation": "foreach"},
        )


@pytest.mark.skipif(
    os.environ.get("LLMTRAIN_TEST_DEVICE") != "cuda", reason="CUDA's sync debug mode needs a GPU"
)
def test_steady_state_steps_make_no_host_synchronisation_on_cuda(kept_data, tmp_path):
    """With LLMTRAIN_TEST_DEVICE=cuda (bench/gpu_speed.sh): every step that is not a log,
    eval or checkpoint step runs under `torch.cuda.set_sync_debug_mode("error")`, which
    raises at any synchronising CUDA call (.item(), a pageable device-to-host copy, a data-
    dependent shape, a stream or device synchronize) — except the designed one: the wait on
    the previous step's event before its values are read."""
    sets = {**SPARSE, "train.sync_free": "on", "train.checkpoint_every": 100}
    tr = trainer(kept_data, tmp_path / "run", **{**sets, "train.eval_every": 100})
    step_fn, settle = tr.train_step, tr.deferred.settle
    watched: list[int] = []

    def settle_late():  # the one-step-late read: it waits on that step's event, by design
        torch.cuda.set_sync_debug_mode("default")
        try:
            return settle()
        finally:
            torch.cuda.set_sync_debug_mode("error")

    def train_step():
        if tr.step < 2 or tr._boundary(tr.step + 1):  # warm-up; steps that read on purpose
            return step_fn()
        torch.cuda.set_sync_debug_mode("error")
        try:
            out = step_fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
        watched.append(tr.step)
        return out

    tr.train_step, tr.deferred.settle = train_step, settle_late
    assert tr.fit()["step"] == 24
    assert len(watched) >= 20
