"""Each diagnosis rule fires on a stream that exhibits its failure, with evidence naming
steps, and nothing at warning/error level fires on healthy streams."""

import pytest

from llmtrain.monitor.diagnosis import RULES, diagnose
from tests.unit.monitor import streams


@pytest.mark.parametrize("rule", sorted(streams.FAILURES))
def test_rule_fires_on_its_failure(rule):
    findings = {f.rule: f for f in diagnose(streams.FAILURES[rule]())}
    assert rule in findings, f"{rule} not found; got {sorted(findings)}"
    f = findings[rule]
    assert f.severity in ("error", "warning")
    assert f.evidence and f.suggestion and f.steps
    assert any(str(s) in f.evidence for s in f.steps), f.evidence


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"lr_schedule": "linear"},
        {"lr_schedule": "constant"},
        {"steps": 300, "log_every": 1},
        {"steps": 5000, "log_every": 50, "eval_every": 500},
    ],
)
def test_no_false_alarm_on_healthy_runs(seed, kw):
    bad = [f for f in diagnose(streams.healthy(seed, noise=0.03, **kw)) if f.severity != "info"]
    assert not bad, [f"{f.rule}: {f.evidence}" for f in bad]


def test_learning_rate_cause_is_named():
    low = {f.rule: f for f in diagnose(streams.broken_lr_too_low())}["loss_not_falling"]
    assert "very low" in low.suggestion and "train.lr=" in low.suggestion
    high = {f.rule: f for f in diagnose(streams.broken_lr_too_high())}["loss_not_falling"]
    assert "too high" in high.suggestion


def test_overfitting_points_at_the_best_checkpoint():
    from pathlib import Path

    from llmtrain.monitor.runs import Checkpoint

    run = streams.broken_overfitting()
    run.checkpoints = [Checkpoint(s, Path(f"/x/step_{s:06d}"), 0.0) for s in (200, 400, 600)]
    f = {f.rule: f for f in diagnose(run)}["overfitting"]
    assert "step_000400" in f.suggestion
    assert "gap grew" in f.evidence


def test_too_short_runs_raise_nothing():
    run = streams.healthy(steps=40, log_every=10)
    assert diagnose(run) == []
    assert len(RULES) >= 12


@pytest.mark.parametrize("train", [{"lr_schedule": "plateau"},
                                   {"lr_schedule": "wsd", "max_time_sec": 3600}])  # fmt: skip
def test_adaptive_schedules_are_not_flagged(train):
    run = streams.broken_lr_schedule()
    run.config["train"].update(train)
    assert "lr_schedule" not in {f.rule for f in diagnose(run)}
