"""The diagnosis reads the LR schedule exactly as the trainer does (`optim.schedule_of`):
a WSD run with a non-default `train.wsd_decay_fraction` is not a false "error"."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmtrain.config import config_to_dict
from llmtrain.monitor.diagnosis import rule_lr_schedule
from llmtrain.monitor.runs import RunData
from llmtrain.train.config import TrainConfig
from llmtrain.train.lr_control import LRController


def run_of(cfg: TrainConfig, logged: TrainConfig) -> RunData:
    """A run whose config says `cfg` and whose records carry `logged`'s LRs."""
    run = RunData(Path("/synthetic/wsd"), "wsd", config={"train": config_to_dict(cfg)})
    ctl = LRController(logged)
    for step in range(1, logged.max_steps + 1):
        run.add({"step": step, "loss": 3.0, "lr": ctl.lr(step - 1)})
    return run


@pytest.mark.parametrize("schedule", ["wsd", "cosine", "linear", "step", "exponential"])
def test_a_run_that_followed_its_schedule_is_clean(schedule):
    kw = dict(lr=1e-3, min_lr=1e-4, warmup_steps=10, max_steps=200, lr_schedule=schedule)
    t = TrainConfig(**kw, wsd_decay_fraction=0.5)
    assert rule_lr_schedule(run_of(t, t)) is None


def test_a_wsd_run_with_another_decay_fraction_is_still_caught():
    kw = dict(lr=1e-3, min_lr=1e-4, warmup_steps=10, max_steps=200, lr_schedule="wsd")
    said, did = TrainConfig(**kw, wsd_decay_fraction=0.5), TrainConfig(**kw)
    finding = rule_lr_schedule(run_of(said, did))
    assert finding is not None and finding.severity == "error"
