"""StepGuard: NaN/Inf and loss spikes skip the update; N in a row stop with a diagnosis;
its state round-trips through a checkpoint's JSON."""

from __future__ import annotations

import json
import math

import pytest

from llmtrain.errors import ConfigError
from llmtrain.train.faults import StabilityConfig, StepGuard, TrainingDivergedError


def test_nonfinite_is_skipped_then_diagnosed():
    g = StepGuard(StabilityConfig(max_bad_steps=3))
    assert g.check(2.0, 1.0, 0) is None
    assert g.check(math.nan, 1.0, 1) == "nonfinite"
    assert g.check(2.0, math.inf, 2) == "nonfinite"
    assert g.check(1.9, 1.0, 3) is None  # a good step resets the count
    g.check(math.nan, 1.0, 4)
    g.check(math.nan, 1.0, 5)
    with pytest.raises(TrainingDivergedError, match="3 steps in a row.*NaN/Inf.*train.lr"):
        g.check(math.inf, 1.0, 6)


def test_loss_spike_is_skipped_and_state_round_trips():
    cfg = StabilityConfig(spike_zscore=4.0, spike_window=20, spike_min_history=10)
    g = StepGuard(cfg)
    for i in range(12):
        assert g.check(3.0 - 0.01 * i + 0.005 * (i % 2), 1.0, i) is None
    assert g.check(5.0, 1.0, 12) == "loss_spike"
    assert g.check(2.9, 1.0, 13) is None  # back to normal: applied
    g2 = StepGuard(cfg)
    g2.load_state_dict(json.loads(json.dumps(g.state_dict())))
    assert g2.state_dict() == g.state_dict()
    assert g2.check(5.0, 1.0, 14) == "loss_spike"


def test_spike_test_waits_for_history():
    g = StepGuard(StabilityConfig(spike_zscore=2.0, spike_window=10, spike_min_history=5))
    for i, loss in enumerate([3.0, 3.0, 3.0, 9.0]):
        assert g.check(loss, 1.0, i) is None  # too little history to judge


def steady(g: StepGuard, n: int) -> None:
    for i in range(n):
        assert g.check(3.0 - 0.01 * i + 0.005 * (i % 2), 1.0 + 0.01 * (i % 3), i) is None


def test_grad_norm_spike_is_skipped_even_when_the_loss_is_normal():
    g = StepGuard(StabilityConfig(spike_zscore=4.0, grad_zscore=4.0, spike_window=20,
                                  spike_min_history=10))  # fmt: skip
    steady(g, 12)
    assert g.check(2.9, 5.0, 12) == "grad_spike"
    assert g.check(2.9, 1.0, 13) is None
    off = StepGuard(StabilityConfig(grad_zscore=0.0, spike_window=20, spike_min_history=10))
    steady(off, 12)
    assert off.check(2.9, 5.0, 12) is None


def test_persistent_spikes_ask_for_a_rollback_then_stop_once_rollbacks_are_spent():
    cfg = StabilityConfig(spike_zscore=4.0, spike_window=20, spike_min_history=10,
                          rollback_after=2, max_bad_steps=3, max_rollbacks=1)  # fmt: skip
    g = StepGuard(cfg)
    steady(g, 12)
    assert g.check(9.0, 1.0, 12) == "loss_spike" and not g.rollback_due
    assert g.check(9.0, 1.0, 13) == "loss_spike" and g.rollback_due
    assert [b.step for b in g.bad] == [12, 13]
    g.rollbacks += 1  # what the trainer does after reloading a checkpoint
    g.load_state_dict({**g.state_dict(), "bad_in_a_row": 0})
    g.check(9.0, 1.0, 14)
    assert g.check(9.0, 1.0, 15) == "loss_spike" and not g.rollback_due
    with pytest.raises(TrainingDivergedError, match=r"after 1 rollback\(s\)"):
        g.check(9.0, 1.0, 16)


def test_nan_never_asks_for_a_rollback_and_no_checkpoint_means_stop():
    g = StepGuard(StabilityConfig(rollback_after=2, max_bad_steps=3))
    g.check(math.nan, 1.0, 0)
    g.check(math.nan, 1.0, 1)
    assert not g.rollback_due
    h = StepGuard(StabilityConfig(spike_window=4, spike_min_history=3, rollback_after=2,
                                  max_bad_steps=3))  # fmt: skip
    for i in range(4):
        h.check(3.0 + 0.01 * (i % 2), 1.0, i)
    h.check(50.0, 1.0, 4)
    h.check(50.0, 1.0, 5)
    assert h.rollback_due
    h.can_roll_back = False  # the trainer found no checkpoint before the spikes
    assert not h.rollback_due
    assert h.check(3.0, 1.0, 6) is None  # they ended: a later run of spikes may roll back
    h.check(50.0, 1.0, 7)
    h.check(50.0, 1.0, 8)
    assert h.rollback_due
    h.can_roll_back = False
    with pytest.raises(TrainingDivergedError, match="no checkpoint before the spikes"):
        h.check(50.0, 1.0, 9)


def test_rollback_settings_are_validated():
    with pytest.raises(ConfigError, match="rollback_after"):
        StabilityConfig(rollback_after=6, max_bad_steps=5).validate()
    with pytest.raises(ConfigError, match="grad_zscore"):
        StabilityConfig(grad_zscore=-1).validate()


def test_old_checkpoint_state_without_grad_window_loads():
    g = StepGuard(StabilityConfig(spike_window=10, spike_min_history=3))
    g.load_state_dict({"window": [3.0, 3.1, 3.0, 2.9], "bad_in_a_row": 0, "skipped": 2})
    assert g.check(3.0, 100.0, 4) is None  # no grad history yet: only the loss is judged
    assert g.state_dict()["rollbacks"] == 0
