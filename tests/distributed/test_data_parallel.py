"""DDP and FSDP2 on a 2-process gloo group train exactly like one process with the same
global batch (one micro-batch per rank vs two accumulated micro-batches), so do Muon under
DDP and the fused LM head + loss under DDP and FSDP, and an FSDP sharded checkpoint resumes on another world size (2 → 1 → 2) bitwise."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from llmtrain.monitor.metrics import read_metrics

from .conftest import run_distributed


def overrides(data: Path, steps: int, **extra: object) -> list[str]:
    from tests.integration.conftest import tiny_overrides

    # lr_decay_steps fixed: the schedule must not depend on where a run segment stops
    sets = {"train.eval_every": 1000, "train.checkpoint_every": 4, "train.keep_last": 0}
    sets["train.lr_decay_steps"] = 12
    return tiny_overrides(data, steps=steps, **{**sets, **extra})


def train(data: Path, run: Path, steps: int, resume: bool = False, **extra: object) -> None:
    """One training run; in a forked worker it joins the process group from the env."""
    from llmtrain.train.config import load_run_config
    from llmtrain.train.trainer import Trainer

    torch.set_num_threads(1)
    cfg = load_run_config(overrides=overrides(data, steps, **extra))
    Trainer(cfg, run, resume=resume, show_progress=False).fit()


def losses(run: Path) -> list[float]:
    return [r["loss"] for r in read_metrics(run / "metrics.jsonl") if "loss" in r]


def weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(run / "checkpoints" / f"step_{step:06d}" / "model.safetensors")


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_ddp_and_fsdp_equal_single_process(dist_data, tmp_path):
    train(dist_data, tmp_path / "single", 4)  # micro 4 x accum 2 x 1 process
    run_distributed(train, 2, dist_data, tmp_path / "ddp", 4)  # micro 4 x 1 x 2 ranks
    run_distributed(_train_fsdp, 2, dist_data, tmp_path / "fsdp", 4)
    ref = losses(tmp_path / "single")
    assert len(ref) == 4
    assert losses(tmp_path / "ddp") == ref
    assert losses(tmp_path / "fsdp") == ref
    assert_same_weights(weights(tmp_path / "ddp", 4), weights(tmp_path / "single", 4))
    # FSDP2 sums the grad norm over shards in another order: the clip coefficient (and so
    # the weights) may differ in the last bit; the losses above are still bitwise equal.
    sharded, single = weights(tmp_path / "fsdp", 4), weights(tmp_path / "single", 4)
    for k in single:
        torch.testing.assert_close(sharded[k], single[k], rtol=0, atol=1e-6)


def _train_fsdp(data: Path, run: Path, steps: int, resume: bool = False, **extra) -> None:
    train(data, run, steps, resume, **{"distributed.strategy": "fsdp", **extra})


MLM = {"train.objective": '"mlm"', "model.architecture": '"encoder"'}


def test_masked_lm_under_ddp_and_fsdp_equals_single_process(dist_data, tmp_path):
    """Dynamic masks are seeded by a micro-batch's place in the global batch (not its index
    on its rank), and the sparse LM head gathers the same positions on every layout."""
    train(dist_data, tmp_path / "single", 4, **MLM)
    run_distributed(_train_mlm, 2, dist_data, tmp_path / "ddp", "ddp")
    run_distributed(_train_mlm, 2, dist_data, tmp_path / "fsdp", "fsdp")
    ref = losses(tmp_path / "single")
    assert len(ref) == 4 and losses(tmp_path / "ddp") == ref
    assert losses(tmp_path / "fsdp") == pytest.approx(ref, rel=1e-6)


def _train_mlm(data: Path, run: Path, strategy: str) -> None:
    train(data, run, 4, **{"distributed.strategy": f'"{strategy}"', **MLM})


# the fused LM head + loss forced on, in chunks of 18 rows (of a 58-id vocabulary's fp32
# logits): CLM's 128 rows a micro-batch in 8 chunks, MLM's ~20 masked ones in 1-2
FUSED = {"objective.fused_loss": '"on"', "objective.loss_chunk_mib": 0.004}


def test_the_fused_head_loss_under_ddp_and_fsdp_equals_single_process(dist_data, tmp_path):
    """The fused op's gradients reach DDP's buckets and FSDP2's unsharded weights like the
    plain head's: CLM under DDP bitwise equal to one process, MLM (sparse positions, BERT's
    head transform and bias) under FSDP2 within 1e-6, and both equal to the unfused loss."""
    train(dist_data, tmp_path / "single", 4, **FUSED)
    train(dist_data, tmp_path / "plain", 4)
    train(dist_data, tmp_path / "single_mlm", 4, **MLM, **FUSED)
    train(dist_data, tmp_path / "plain_mlm", 4, **MLM)
    run_distributed(_train_fused, 2, dist_data, tmp_path / "ddp", "ddp", {})
    run_distributed(_train_fused, 2, dist_data, tmp_path / "fsdp", "fsdp", MLM)
    ref, ref_mlm = losses(tmp_path / "single"), losses(tmp_path / "single_mlm")
    assert len(ref) == 4 and losses(tmp_path / "ddp") == ref
    assert_same_weights(weights(tmp_path / "ddp", 4), weights(tmp_path / "single", 4))
    assert losses(tmp_path / "fsdp") == pytest.approx(ref_mlm, rel=1e-6)
    assert ref == pytest.approx(losses(tmp_path / "plain"), rel=1e-5)
    assert ref_mlm == pytest.approx(losses(tmp_path / "plain_mlm"), rel=1e-5)


def _train_fused(data: Path, run: Path, strategy: str, extra: dict) -> None:
    train(data, run, 4, **{"distributed.strategy": f'"{strategy}"', **extra, **FUSED})


def test_sharded_checkpoint_resumes_on_another_world_size(dist_data, tmp_path):
    """FSDP on 2 ranks saves a DCP checkpoint at step 4; one process resumes it to step 8;
    2 ranks resume that to step 12. The curve equals an uninterrupted run's bitwise (no
    clipping here: under FSDP the norm's summation order differs, see above)."""
    opts = {"distributed.strategy": "fsdp", "train.grad_clip": 0}
    train(dist_data, tmp_path / "ref", 12, **opts)
    run = tmp_path / "resharded"
    run_distributed(_train_fsdp_noclip, 2, dist_data, run, 4)
    assert (run / "checkpoints" / "step_000004" / "dcp" / ".metadata").is_file()
    assert not (run / "checkpoints" / "step_000004" / "optimizer.pt").exists()
    train(dist_data, run, 8, resume=True, **opts)  # 1 process, no process group
    run_distributed(_train_fsdp_noclip, 2, dist_data, run, 12, True)
    assert losses(run) == losses(tmp_path / "ref")
    assert_same_weights(weights(run, 12), weights(tmp_path / "ref", 12))


def _train_fsdp_noclip(data: Path, run: Path, steps: int, resume: bool = False) -> None:
    train(data, run, steps, resume, **{"distributed.strategy": "fsdp", "train.grad_clip": 0})


def _train_muon(data: Path, run: Path, steps: int) -> None:
    train(data, run, steps, **{"optim.name": "muon"})


def test_muon_under_ddp_equals_single_process(dist_data, tmp_path):
    """Muon (hidden 2-D matrices) + AdamW (the rest) on 2 DDP ranks: each rank
    orthogonalises the same all-reduced gradient, so the run equals one process bitwise."""
    _train_muon(dist_data, tmp_path / "single", 4)
    run_distributed(_train_muon, 2, dist_data, tmp_path / "ddp", 4)
    ref = losses(tmp_path / "single")
    assert len(ref) == 4 and ref[-1] < ref[0]
    assert losses(tmp_path / "ddp") == ref
    assert_same_weights(weights(tmp_path / "ddp", 4), weights(tmp_path / "single", 4))
