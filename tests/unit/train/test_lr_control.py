"""`LRController`: the deadline plan for WSD (driven by a fake clock), reduce-on-plateau, and
that every plain schedule is exactly `lr_at`."""

from __future__ import annotations

import json

import pytest

from llmtrain.optim import lr_at
from llmtrain.train.config import TrainConfig
from llmtrain.train.lr_control import DeadlinePlan, LRController, Plateau


def run_clock(ctl: LRController, sec_per_step: float, max_steps: int) -> tuple[int, str | None]:
    """Steps under a fake clock: step s ends at elapsed = s · sec_per_step."""
    for step in range(1, max_steps + 1):
        reason = ctl.after_step(step, step * sec_per_step)
        if reason:
            return step, reason
    return max_steps, None


def test_deadline_plan_starts_decay_so_it_ends_at_the_deadline():
    t = TrainConfig(lr=1.0, min_lr=0.0, warmup_steps=5, max_steps=1000, lr_schedule="wsd",
                    max_time_sec=100.0, wsd_decay_fraction=0.2)  # fmt: skip
    ctl = LRController(t)
    end, reason = run_clock(ctl, 1.0, 1000)
    # 1 s/step, 100 s: 99 steps fit (one in reserve); decay = ceil(0.2 · (99 - 5)) = 19 steps
    assert (ctl.plan.decay_start, ctl.plan.decay_end) == (80, 99)
    assert end == 99 and reason is not None
    lrs = [ctl.lr(s) for s in range(100)]
    assert lrs[79] == lrs[80] == 1.0 and lrs[81] < 1.0  # stable, then linear down
    assert lrs[98] == pytest.approx(1 / 19) and lrs[99] == 0.0  # annealed at the end
    assert end * 1.0 <= t.max_time_sec


def test_deadline_plan_leaves_wsd_alone_when_the_step_budget_ends_first():
    t = TrainConfig(lr=1.0, min_lr=0.1, warmup_steps=2, max_steps=50, lr_schedule="wsd",
                    max_time_sec=1e6)  # fmt: skip
    ctl = LRController(t)
    assert run_clock(ctl, 1.0, 50) == (50, None) and ctl.plan.decay_start is None
    kw = dict(lr=1.0, min_lr=0.1, warmup_steps=2, decay_steps=50, schedule="wsd")
    assert [ctl.lr(s) for s in range(55)] == [lr_at(s, **kw) for s in range(55)]


def test_deadline_plan_is_restored_from_a_checkpoint():
    t = TrainConfig(warmup_steps=5, max_steps=1000, lr_schedule="wsd", max_time_sec=100.0)
    a = LRController(t)
    run_clock(a, 1.0, 1000)
    b = LRController(t)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert [b.lr(s) for s in range(120)] == [a.lr(s) for s in range(120)]
    assert b.after_step(99, 1.0) is not None  # its plan ends where the first one did


def test_slower_steps_start_the_decay_earlier():
    starts = []
    for sec in (0.5, 1.0, 2.0):
        p = DeadlinePlan(max_time_sec=200.0, warmup_steps=0, decay_steps=10**6)
        for s in range(1, 10**4):
            p.observe(s, s * sec)
            if p.decay_start is not None:
                break
        starts.append(p.decay_start)
    assert starts[0] > starts[1] > starts[2]


@pytest.mark.parametrize(
    "schedule", ["cosine", "linear", "constant", "inverse_sqrt", "exponential", "step", "wsd"]
)
def test_plain_schedules_are_exactly_lr_at(schedule):
    t = TrainConfig(lr=3e-3, min_lr=3e-4, warmup_steps=7, max_steps=90, lr_schedule=schedule)
    ctl = LRController(t)
    kw = dict(lr=3e-3, min_lr=3e-4, warmup_steps=7, decay_steps=90, schedule=schedule)
    assert [ctl.lr(s) for s in range(100)] == [lr_at(s, **kw) for s in range(100)]


def test_plateau_reduces_after_patience_and_floors_at_min_lr():
    t = TrainConfig(lr=1.0, min_lr=0.2, warmup_steps=2, lr_schedule="plateau",
                    plateau_factor=0.5, plateau_patience=2, plateau_threshold=0.01)  # fmt: skip
    ctl = LRController(t)
    assert ctl.lr(0) == 0.5 and ctl.lr(5) == 1.0  # warm-up, then the peak
    # lr_at (what `llmtrain monitor` checks against) gives the LR before any reduction
    assert lr_at(500, lr=1.0, min_lr=0.2, warmup_steps=2, decay_steps=10, schedule="plateau") == 1
    fired = [ctl.on_eval(v) for v in (3.0, 2.0, 1.995, 1.99, 1.5, 1.6, 1.6, 1.6, 1.6)]
    # 1.995 and 1.99 are within 1 % of 2.0: two bad evals → a reduction; then 1.5 improves
    assert fired == [False, False, False, True, False, False, True, False, True]
    assert ctl.plateau.reductions == 3 and ctl.lr(100) == 0.2  # 0.125 floored at min_lr
    state = json.loads(json.dumps(ctl.state_dict()))
    other = LRController(t)
    other.load_state_dict(state)
    assert other.lr(100) == ctl.lr(100) and other.plateau == ctl.plateau


def test_plateau_state_survives_json_before_any_eval():
    p = Plateau()
    ctl = LRController(TrainConfig(lr_schedule="plateau"))
    assert json.loads(json.dumps(ctl.state_dict()))["plateau"]["best"] is None
    assert p.on_eval(1.0) is False
