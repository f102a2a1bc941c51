"""The run-time schedules end to end on the tiny corpus: WSD under a deadline (fake clock)
ends annealed and resumes exactly; reduce-on-plateau, batch-size and sequence-length warm-up
and the Muon optimizer resume bitwise; the automatic micro-batch keeps the global batch; MFU
is reported on CPU against a measured peak."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from llmtrain.checkpoint import latest_checkpoint
from llmtrain.monitor.metrics import read_metrics
from llmtrain.train import auto_micro
from llmtrain.train import trainer as trainer_mod
from llmtrain.train.config import load_run_config
from llmtrain.train.trainer import Trainer

from .conftest import tiny_overrides


def make(data: Path, run: Path, steps: int, resume: bool = False, **extra) -> Trainer:
    sets = {"train.eval_every": 100, "train.checkpoint_every": 100, **extra}
    cfg = load_run_config(overrides=tiny_overrides(data, steps=steps, **sets))
    return Trainer(cfg, run, resume=resume, show_progress=False)


def curve(run: Path) -> list[tuple[int, float, float]]:
    return [(r["step"], r["loss"], r["lr"]) for r in read_metrics(run / "metrics.jsonl")
            if "loss" in r]  # fmt: skip


class FakeClock:
    """Stands in for the trainer's `time`: 1 s passes per training step, nothing otherwise."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def fake_clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(trainer_mod, "time", clock)
    step = Trainer.train_step

    def timed_step(self):
        out = step(self)
        clock.now += 1.0
        return out

    monkeypatch.setattr(Trainer, "train_step", timed_step)
    return clock


WSD = {"train.lr_schedule": "wsd", "train.max_time_sec": 30.0, "train.lr_decay_steps": 500}


def test_wsd_under_a_deadline_ends_annealed_and_resumes_exactly(char_data, tmp_path, fake_clock):
    straight = make(char_data, tmp_path / "straight", 500, **WSD)
    out = straight.fit()
    # 1 s/step, 30 s: 29 steps fit; decay = ceil(0.2 · (29 - 2)) = 6 steps, from step 23
    assert out["step"] == 29 and straight.stop.exit_code == 0
    state = json.loads((latest_checkpoint(tmp_path / "straight/checkpoints") / "state.json")
                       .read_text())  # fmt: skip
    assert state["lr"] == {"decay_start": 23, "decay_end": 29}
    lrs = [lr for _, _, lr in curve(tmp_path / "straight")]
    assert lrs[10] == lrs[23] == 3e-3 and lrs[24] < 3e-3  # lrs[i]: the LR of step i
    assert lrs[-1] == pytest.approx(3e-4 + (3e-3 - 3e-4) / 6)  # the last step's LR: annealed

    fake_clock.now = 0.0
    make(char_data, tmp_path / "split", 25, **WSD).fit()  # stops after the plan was fixed
    fake_clock.now = 0.0
    resumed = make(char_data, tmp_path / "split", 500, resume=True, **WSD)
    assert resumed.fit()["step"] == 29
    assert curve(tmp_path / "split") == curve(tmp_path / "straight")


@pytest.mark.parametrize(
    "extra",
    [
        {
            "train.lr_schedule": "plateau",
            "train.eval_every": 2,
            "train.plateau_patience": 1,
            "train.plateau_threshold": 0.05,
        },  # fmt: skip
        {
            "train.batch_warmup_steps": 6,
            "train.batch_size_start": 4,
            "train.micro_batch_size": 2,
            "train.seq_warmup_steps": 6,
            "train.seq_len_start": 8,
        },  # fmt: skip
        {"optim.name": "muon"},
    ],
    ids=["plateau", "warmups", "muon"],
)
def test_resume_is_bitwise_exact(char_data, tmp_path, extra):
    extra = {"train.lr_decay_steps": 12, **extra}  # the same schedule in the shorter run
    make(char_data, tmp_path / "straight", 12, **extra).fit()
    make(char_data, tmp_path / "split", 6, **extra).fit()
    make(char_data, tmp_path / "split", 12, resume=True, **extra).fit()
    a, b = curve(tmp_path / "straight"), curve(tmp_path / "split")
    assert a == b and len(a) == 12
    assert a[-1][1] < a[0][1]  # it learns
    if extra.get("train.lr_schedule") == "plateau":
        assert a[-1][2] < 3e-3  # at least one reduction happened
        events = [r for r in read_metrics(tmp_path / "straight/metrics.jsonl")
                  if r.get("event") == "lr_reduced"]  # fmt: skip
        assert events


def test_batch_warmup_counts_tokens_and_loader_position(char_data, tmp_path):
    tr = make(char_data, tmp_path / "run", 8, **{"train.batch_warmup_steps": 4,
              "train.batch_size_start": 4, "train.checkpoint_every": 8})  # fmt: skip
    tr.fit()
    state = json.loads((tmp_path / "run/checkpoints/step_000008/state.json").read_text())
    assert state["loader_sample"] == 4 * 4 + 4 * 8  # accum 1 + s // 4: 1,1,1,1 then 2 (x 4)
    assert state["tokens"] == state["loader_sample"] * 32


def test_auto_micro_batch_on_cpu_keeps_the_global_batch(char_data, tmp_path, monkeypatch):
    per_seq = auto_micro.activation_bytes_per_sequence(2, 32, 2, 32, 100)  # ~ this model
    fixed: dict[str, int] = {}  # weights + grads + AdamW state of the model, as counted
    count = auto_micro.state_bytes
    monkeypatch.setattr(auto_micro, "state_bytes", lambda *a: fixed.setdefault("b", count(*a)))
    monkeypatch.setattr(
        auto_micro, "available_memory_bytes", lambda: 2 * (2.5 * per_seq + fixed["b"])
    )
    tr = make(char_data, tmp_path / "run", 3, **{"train.auto_micro_batch": "true"})
    assert tr.cfg.train.micro == 2 and tr.accum == 4  # 8 = 2 x 4
    tr.fit()
    saved = json.loads((tmp_path / "run/config.json").read_text())
    assert saved["train"]["micro_batch_size"] == 2  # --resume does not search again


def test_mfu_on_cpu_uses_a_measured_peak(char_data, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMTRAIN_CACHE_DIR", str(tmp_path / "cache"))
    from llmtrain.monitor import probes

    monkeypatch.setattr(probes, "_CPU_PEAKS", {})
    make(char_data, tmp_path / "run", 2).fit()
    recs = [r for r in read_metrics(tmp_path / "run/metrics.jsonl") if "loss" in r]
    assert all(0 < r["mfu"] < 1 for r in recs)
    cached = json.loads((tmp_path / "cache/cpu_peak_flops.json").read_text())
    assert len(cached) == 1 and next(iter(cached.values())) > 1e8
    monkeypatch.setattr(probes, "_CPU_PEAKS", {})
    monkeypatch.setattr(torch, "mm", None)  # the disk cache answers: no matmul is run
    assert probes.cpu_peak_flops(torch.float32) == next(iter(cached.values()))
