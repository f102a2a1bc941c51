"""A checkpoint written under one strategy resumes under the other: DDP's full checkpoint
(model.safetensors + index-keyed optimizer.pt) continues under FSDP2 on 2 ranks, and the FSDP2
sharded (DCP) checkpoint that run writes continues under DDP. The curve equals an
uninterrupted run's bitwise (no clipping: FSDP sums the grad norm in another order). A full
checkpoint that cannot fit the FSDP model fails with a CheckpointError naming both strategies."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import run_distributed
from .test_data_parallel import assert_same_weights, losses, train, weights

NO_CLIP = {"train.grad_clip": 0}


def _train_as(strategy: str, data: Path, run: Path, steps: int, resume: bool) -> None:
    # FSDP with activation checkpointing: its wrappers rename parameters, not state dicts
    extra = {"distributed.activation_checkpointing": "true"} if strategy == "fsdp" else {}
    train(data, run, steps, resume, **{"distributed.strategy": strategy, **NO_CLIP, **extra})


def test_ddp_checkpoint_resumes_under_fsdp_and_back(dist_data, tmp_path):
    train(dist_data, tmp_path / "ref", 12, **NO_CLIP)  # one process == DDP, bitwise
    run = tmp_path / "switched"
    run_distributed(_train_as, 2, "ddp", dist_data, run, 4, False)
    assert (run / "checkpoints" / "step_000004" / "optimizer.pt").is_file()
    run_distributed(_train_as, 2, "fsdp", dist_data, run, 8, True)  # full → sharded
    assert (run / "checkpoints" / "step_000008" / "dcp" / ".metadata").is_file()
    run_distributed(_train_as, 2, "ddp", dist_data, run, 12, True)  # sharded → DDP
    assert losses(run) == losses(tmp_path / "ref")
    assert_same_weights(weights(run, 12), weights(tmp_path / "ref", 12))


def _resume_wider_under_fsdp(data: Path, run: Path) -> None:
    train(data, run, 8, True, **{"distributed.strategy": "fsdp", "model.n_embd": 64})


def test_a_full_checkpoint_that_does_not_fit_the_fsdp_model_says_why(dist_data, tmp_path):
    run = tmp_path / "run"
    train(dist_data, run, 4)  # one process: a full checkpoint
    with pytest.raises(Exception, match="written without sharding.*distributed.strategy=ddp"):
        run_distributed(_resume_wider_under_fsdp, 2, dist_data, run)
