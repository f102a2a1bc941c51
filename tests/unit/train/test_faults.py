"""StepGuard: NaN/Inf and loss spikes skip the update; N in a row stop with a diagnosis;
its state round-trips through a checkpoint's JSON."""

from __future__ import annotations

import json
import math

import pytest

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
