"""The trainer leaves the user's config as given (derived values live in `Trainer.cfg`, a
resolved copy; config.json records it, with an unset micro-batch left unset), and `train.sample_every` logs text samples for a
decoder and a logged reason for any other model."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from llmtrain.config import config_to_dict
from llmtrain.monitor.metrics import read_metrics
from llmtrain.train.config import load_run_config
from llmtrain.train.trainer import Trainer

from .conftest import tiny_overrides


def config(data: Path, steps: int = 4, **extra: object):
    sets = [o for o in tiny_overrides(data, steps=steps, **extra) if "micro_batch" not in o]
    return load_run_config(overrides=sets)


def test_trainer_does_not_edit_the_users_config(char_data, tmp_path):
    """Bug: the trainer wrote vocab_size and micro_batch_size into the caller's config."""
    cfg = config(char_data)
    before = config_to_dict(cfg)
    assert cfg.model.vocab_size == 0 and cfg.train.micro_batch_size is None
    tr = Trainer(cfg, tmp_path / "run", show_progress=False)
    assert config_to_dict(cfg) == before
    assert tr.cfg.model.vocab_size > 0 and tr.cfg.train.micro_batch_size == 8
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"]["vocab_size"] == tr.cfg.model.vocab_size
    assert saved["train"]["micro_batch_size"] is None  # derived again on any world size


def test_sample_every_logs_text_samples_for_a_decoder(char_data, tmp_path):
    cfg = config(char_data, steps=4, **{"train.sample_every": 2})
    Trainer(cfg, tmp_path / "run", show_progress=False).fit()
    recs = read_metrics(tmp_path / "run" / "metrics.jsonl")
    samples = [(r["step"], r["text"]) for r in recs if r.get("event") == "sample"]
    assert [s for s, _ in samples] == [2, 4] and all(isinstance(t, str) for _, t in samples)
    assert any(t for _, t in samples)


def test_sample_every_is_skipped_with_a_reason_for_an_encoder(char_data, tmp_path):
    extra = {"model.architecture": "encoder", "train.objective": "mlm", "train.sample_every": 2}
    cfg = config(char_data, steps=2, **extra)
    Trainer(cfg, tmp_path / "run", show_progress=False).fit()
    recs = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert not [r for r in recs if r.get("event") == "sample"]
    (skip,) = [r for r in recs if r.get("event") == "sample_skipped"]
    assert "needs a decoder model" in skip["reason"]


def _subnormal_survives() -> bool:
    tiny = torch.tensor([1e-39], dtype=torch.float32)  # below fp32's smallest normal, 1.2e-38
    return bool((tiny * 2.0).item() != 0.0)


def test_a_cpu_run_computes_subnormals_as_zero(char_data, tmp_path):
    """A trained model's sharp attention gives softmax values ~1e-40 (exp(s - max) of the keys
    a query ignores); x86 cores compute on such subnormal floats far slower (a 3-layer run's
    step: 1.05 s instead of 0.75 s at step 536, `bench/subnormals.py`), so CPU training and
    inference flush them to zero (FTZ/DAZ)."""

    from llmtrain.checkpoint.inference import load_trained

    before = _subnormal_survives()
    torch.set_flush_denormal(False)
    try:
        assert _subnormal_survives() and torch.softmax(torch.tensor([0.0, -95.0]), 0)[1] > 0
        Trainer(config(char_data), tmp_path / "run", show_progress=False).fit()
        assert not _subnormal_survives()
        assert torch.softmax(torch.tensor([0.0, -95.0]), 0)[1] == 0
        torch.set_flush_denormal(False)
        load_trained(tmp_path / "run")  # `llmtrain eval / generate / predict` load this way
        assert not _subnormal_survives()
    finally:
        torch.set_flush_denormal(not before)
