"""A spike rollback under 2-rank DDP (collective checkpoint load, rank 0 writing the record
and pruning the abandoned branch) follows the same path as one process, bitwise."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_engine_rollback import BAD, corrupt, train_losses, trainer

from .conftest import run_distributed


def _run(data: Path, run: Path) -> None:
    tr = trainer(data, run)
    corrupt(tr, BAD)
    tr.fit()


def test_rollback_under_ddp_equals_one_process(dist_data, tmp_path):
    _run(dist_data, tmp_path / "single")
    run_distributed(_run, 2, dist_data, tmp_path / "ddp")
    for name in ("single", "ddp"):
        (rec,) = (tmp_path / name / "bad_windows.jsonl").read_text().splitlines()
        assert json.loads(rec)["sample_start"] == 64
    assert train_losses(tmp_path / "ddp") == train_losses(tmp_path / "single")
    assert len(train_losses(tmp_path / "ddp")) == 24
