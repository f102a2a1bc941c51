"""An unset `train.micro_batch_size` means batch_size / world size: the config that trains on
one process (micro 8) also trains under torchrun on 2 ranks (micro 4 each) — it used to fail
there, as unset meant the whole global batch per rank — with the same global batch and so the
same losses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from .conftest import run_distributed
from .test_data_parallel import losses


def train(data: Path, run: Path) -> None:
    from llmtrain.train.config import load_run_config
    from llmtrain.train.trainer import Trainer
    from tests.integration.conftest import tiny_overrides

    torch.set_num_threads(1)
    sets = [o for o in tiny_overrides(data, steps=3) if not o.startswith("train.micro_batch")]
    cfg = load_run_config(overrides=[*sets, "train.lr_decay_steps=12"])
    assert cfg.train.micro_batch_size is None
    tr = Trainer(cfg, run, show_progress=False)
    tr.fit()
    assert cfg.train.micro_batch_size is None  # the user's config is left as given
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    assert tr.cfg.train.micro_batch_size == 8 // world and tr.accum == 1


def test_batch_size_alone_trains_on_one_and_two_processes(dist_data, tmp_path):
    train(dist_data, tmp_path / "single")
    run_distributed(train, 2, dist_data, tmp_path / "ddp")
    for name in ("single", "ddp"):  # unset stays unset: a resume derives it again
        saved = json.loads((tmp_path / name / "config.json").read_text())
        assert saved["train"]["micro_batch_size"] is None
    assert len(losses(tmp_path / "ddp")) == 3
    # the same global batch: equal up to summation order (micro 8 vs 2 x 4 in the matmuls)
    assert losses(tmp_path / "ddp") == pytest.approx(losses(tmp_path / "single"), rel=1e-5)
