"""Graceful stops under torch.distributed: every rank decides on the all-reduced flag only.
A SIGTERM whose handler runs while the all-reduce is in flight (this rank sent "no signal",
and so did every other) waits for the next step; stopping on it at once left the other
ranks stepping into a collective this one never joined — a hang until the launcher killed
both (seen in the two-node SLURM test: no checkpoint, no "stopped" line)."""

import signal

from llmtrain.train import signals
from llmtrain.train.signals import EXIT_PREEMPTED, StopRequest


def test_a_signal_handled_during_the_all_reduce_waits_for_the_next_step(monkeypatch):
    stop = StopRequest()
    sent = []

    def all_reduce_any(flag, device=None):
        sent.append(flag)
        if len(sent) == 1:  # the handler runs while this rank's "no" is on the wire
            stop._handle(signal.SIGTERM, None)
            return False  # no rank had a signal when they sent
        return flag

    monkeypatch.setattr(signals, "any_rank", all_reduce_any)
    assert stop.reason(0.0) is None and not stop.by_signal and stop.exit_code == 0
    assert stop.reason(0.0) == "SIGTERM" and stop.by_signal  # the next step: all ranks agree
    assert sent == [False, True] and stop.exit_code == EXIT_PREEMPTED


def test_a_signal_on_another_rank_stops_this_one_too(monkeypatch):
    monkeypatch.setattr(signals, "any_rank", lambda flag, device=None: True)
    stop = StopRequest()
    assert stop.reason(0.0) == "signal on another rank" and stop.exit_code == EXIT_PREEMPTED


def test_a_deadline_is_a_normal_end(monkeypatch):
    monkeypatch.setattr(signals, "any_rank", lambda flag, device=None: flag)
    stop = StopRequest(max_time_sec=10.0)
    assert stop.reason(5.0) is None and stop.reason(10.0) == "deadline"
    assert not stop.by_signal and stop.exit_code == 0
