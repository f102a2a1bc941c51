"""Checkpoint safety: checksums catch corruption, a failed save (full disk) leaves the
previous checkpoint intact, retention keeps the best by val loss, one writer per run dir."""

from __future__ import annotations

import errno

import pytest
import safetensors.torch
import torch
from torch import nn

from llmtrain.checkpoint import (
    RunDirLock,
    best_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from llmtrain.errors import CheckpointError, ConfigError


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))


def trained(m: nn.Module) -> torch.optim.Optimizer:
    opt = torch.optim.AdamW(m.parameters(), lr=0.1)
    m(torch.randn(3, 4)).sum().backward()
    opt.step()
    return opt


def test_checksum_mismatch_is_a_clear_error(tmp_path):
    m = model()
    d = save_checkpoint(tmp_path, 1, m, trained(m), {"step": 1}, {})
    assert (d / "checksums.json").is_file()
    load_checkpoint(d, model(), trained(model()))  # intact: loads
    blob = bytearray((d / "optimizer.pt").read_bytes())
    blob[-20] ^= 0xFF  # one flipped byte that torch.load might not notice
    (d / "optimizer.pt").write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match=r"corrupt: optimizer.pt fails its sha256"):
        load_checkpoint(d, model(), trained(model()))


def test_full_disk_during_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    m = model()
    opt = trained(m)
    first = save_checkpoint(tmp_path, 1, m, opt, {"step": 1}, {}, keep_last=1)

    def disk_full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_model", disk_full)
    with pytest.raises(CheckpointError, match="earlier checkpoints are intact"):
        save_checkpoint(tmp_path, 2, m, opt, {"step": 2}, {}, keep_last=1)
    assert list_checkpoints(tmp_path) == [first]
    assert not any(p.name.startswith(".tmp") for p in tmp_path.iterdir())
    assert load_checkpoint(first, model(), trained(model()))["step"] == 1


def test_retention_keeps_last_k_plus_best(tmp_path):
    m = model()
    for step, val in [(1, 3.0), (2, 1.5), (3, 2.0), (4, 2.5), (5, None)]:
        save_checkpoint(tmp_path, step, m, None, {"step": step, "val_loss": val}, {}, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "step_000002",
        "step_000004",
        "step_000005",
    ]
    assert best_checkpoint(tmp_path).name == "step_000002"


def test_run_dir_lock_refuses_a_second_writer(tmp_path):
    with (
        RunDirLock(tmp_path),
        pytest.raises(ConfigError, match="in use by another training process"),
    ):
        RunDirLock(tmp_path).acquire()
    RunDirLock(tmp_path).acquire().release()  # released: free again
