"""Spike rollback end to end: a window of corrupted samples (targets replaced by UNK, as a
bad stretch of data would) makes the loss spike; after `rollback_after` skipped steps the run
reloads the last good checkpoint, skips the data read since it, records the window's documents
in bad_windows.jsonl (with their input ids: prepared with --keep-text), and finishes with a
finite loss. A resume after the rollback replays the kept branch bitwise, and rollbacks are
capped: a spike that outlives them stops the run with a diagnosis."""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import pytest

from llmtrain.monitor.diagnosis import diagnose
from llmtrain.monitor.metrics import read_metrics
from llmtrain.monitor.runs import load_run
from llmtrain.tokenizer import load_tokenizer
from llmtrain.train.config import load_run_config
from llmtrain.train.faults import TrainingDivergedError
from llmtrain.train.trainer import Trainer

from .conftest import synthetic_corpus, tiny_overrides

BAD = range(80, 96)  # global samples of steps 10 and 11 (8 sequences per step)
GUARD = {
    "stability.spike_window": 8,
    "stability.spike_min_history": 4,
    "stability.spike_zscore": 4,
    "stability.grad_zscore": 4,
    "stability.rollback_after": 2,
    "stability.max_bad_steps": 4,
}


@pytest.fixture(scope="module")
def kept_data(tmp_path_factory) -> Path:
    from llmtrain.data.prepare import PrepareConfig, prepare_corpus

    root = tmp_path_factory.mktemp("rollback_corpus")
    out = root / "data"
    cfg = PrepareConfig(tokenizer="char", val_fraction=0.2, workers=1, keep_text=True)
    prepare_corpus([synthetic_corpus(root / "raw")], out, cfg)
    return out


def trainer(data: Path, run: Path, resume: bool = False, **extra) -> Trainer:
    sets = {"train.lr_decay_steps": 24, "train.eval_every": 100, "train.checkpoint_every": 4}
    cfg = load_run_config(overrides=tiny_overrides(data, steps=24, **{**sets, **GUARD, **extra}))
    return Trainer(cfg, run, resume=resume, show_progress=False)


def corrupt(tr: Trainer, bad: range) -> None:
    """Fault injection keyed by global sample index: those samples' targets become UNK (1)."""
    source = tr.source  # the sample source the sampler's ranges are read from
    samples = source.samples

    def corrupted(start: int, count: int):
        x, y = samples(start, count)
        rows = [r for r in range(count) if start + r in bad]
        if rows:
            y = y.clone()
            y[rows] = 1
        return x, y

    source.samples = corrupted


def train_losses(run: Path) -> list[float]:
    return [
        r["loss"] for r in read_metrics(run / "metrics.jsonl") if "loss" in r and "event" not in r
    ]


def test_spike_window_rolls_back_records_its_documents_and_training_finishes(kept_data, tmp_path):
    run = tmp_path / "run"
    tr = trainer(kept_data, run)
    corrupt(tr, BAD)
    out = tr.fit()
    assert out["step"] == 24 and math.isfinite(train_losses(run)[-1])
    recs = read_metrics(run / "metrics.jsonl")
    events = [(r["event"], r["step"]) for r in recs if r.get("event", "checkpoint") != "checkpoint"]
    assert events == [("skipped_step", 11), ("skipped_step", 12), ("rollback", 12)]
    train = [r["step"] for r in recs if "loss" in r and "event" not in r]
    assert train == list(range(1, 25))  # the abandoned branch's records were rewound
    (rec,) = [json.loads(line) for line in (run / "bad_windows.jsonl").read_text().splitlines()]
    assert (rec["to_step"], rec["first_step"], rec["last_step"]) == (8, 8, 11)
    assert (rec["sample_start"], rec["sample_end"]) == (64, 96)
    assert [s["step"] for s in rec["spikes"]] == [10, 11]
    state = json.loads((run / "checkpoints" / "step_000024" / "state.json").read_text())
    assert state["data_skips"] == [[8, 32]] and state["guard"]["rollbacks"] == 1
    assert state["loader_sample"] == 24 * 8 + 32
    findings = {f.rule: f for f in diagnose(load_run(run))}
    assert "back to step 8" in findings["rollbacks"].evidence
    # every corrupted sample's text lies in the documents recorded for the spike steps
    texts = {json.loads(line)["id"]: json.loads(line)["text"]
             for line in (kept_data / "documents.jsonl").read_text(encoding="utf-8").splitlines()}  # fmt: skip
    spike_texts = [texts[d["id"]] for d in rec["spike_documents"]]
    assert {d["train_doc"] for d in rec["spike_documents"]} <= {
        d["train_doc"] for d in rec["documents"]
    }
    tok = load_tokenizer(kept_data / "tokenizer")
    for i in BAD:
        ids = tr.source.samples(i, 1)[0][0].tolist()
        cuts = [-1] + [j for j, t in enumerate(ids) if t == tok.eos_id] + [len(ids)]
        pieces = [tok.decode(ids[a + 1 : b]) for a, b in zip(cuts, cuts[1:]) if b > a + 1]
        assert pieces and all(any(p in t for t in spike_texts) for p in pieces), i


def test_resume_after_a_rollback_replays_the_kept_branch_bitwise(kept_data, tmp_path):
    straight = trainer(kept_data, tmp_path / "straight")
    corrupt(straight, BAD)
    straight.fit()
    split = trainer(kept_data, tmp_path / "split")
    corrupt(split, BAD)
    loss = split.objective.loss

    def stop_at_14(out, batch):  # step 14 exists only after the rollback (to step 8)
        if split.step == 14:
            os.kill(os.getpid(), signal.SIGTERM)
        return loss(out, batch)

    split.objective.loss = stop_at_14
    assert split.fit()["step"] == 15
    resumed = trainer(kept_data, tmp_path / "split", resume=True)
    corrupt(resumed, BAD)
    resumed.fit()
    assert train_losses(tmp_path / "split") == train_losses(tmp_path / "straight")
    lines = (tmp_path / "split" / "bad_windows.jsonl").read_text().splitlines()
    assert len(lines) == 1


def test_spikes_that_outlive_the_rollbacks_stop_the_run(kept_data, tmp_path):
    over = {"stability.max_rollbacks": 1, "stability.max_bad_steps": 3}
    tr = trainer(kept_data, tmp_path / "run", **over)
    corrupt(tr, range(80, 10**6))  # every sample from step 10 on is bad
    with pytest.raises(TrainingDivergedError, match=r"after 1 rollback\(s\)"):
        tr.fit()
    assert len((tmp_path / "run" / "bad_windows.jsonl").read_text().splitlines()) == 1
