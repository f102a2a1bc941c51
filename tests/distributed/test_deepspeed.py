"""distributed.strategy=deepspeed: ZeRO 1/2/3 from the DeepSpeed JSON configs in configs/ on 2
gloo ranks train like one process (fp32 tolerance), a DeepSpeed checkpoint resumes exactly
and its converted model.safetensors is what eval/generate/export read; bad combinations
get one-line ConfigErrors. Skipped when DeepSpeed (the `llmtrain[deepspeed]` extra) is absent."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from llmtrain.errors import CheckpointError, ConfigError

from .conftest import run_distributed
from .test_data_parallel import losses, train, weights

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _ds(stage: int) -> dict[str, object]:
    return {
        "distributed.strategy": "deepspeed",
        "distributed.deepspeed_config": f'"{CONFIGS / f"deepspeed_zero{stage}.json"}"',
    }


def _zero_runs(data: Path, root: Path) -> None:
    """In each of 2 ranks: ZeRO-1 and ZeRO-3 for 4 steps; ZeRO-2 for 8 steps, and 4 + a
    resume to 8 (one process start: DeepSpeed imports once)."""
    for stage in (1, 3):
        train(data, root / f"zero{stage}", 4, **_ds(stage))
    train(data, root / "zero2", 8, **_ds(2))
    train(data, root / "resumed", 4, **_ds(2))
    train(data, root / "resumed", 8, resume=True, **_ds(2))


def _zero2_one_process(data: Path, run: Path) -> None:
    train(data, run, 4, **_ds(2))


def test_zero_stages_train_like_one_process_and_resume_exactly(dist_data, tmp_path):
    pytest.importorskip("deepspeed")
    train(dist_data, tmp_path / "single", 8)
    run_distributed(_zero_runs, 2, dist_data, tmp_path)
    ref = losses(tmp_path / "single")
    assert len(ref) == 8 and ref[-1] < ref[0]
    for stage in (1, 3):
        assert losses(tmp_path / f"zero{stage}") == pytest.approx(ref[:4], rel=1e-6, abs=1e-6)
    assert losses(tmp_path / "zero2") == pytest.approx(ref, rel=1e-6, abs=1e-6)
    # exact resume: the curve and the weights of 4 + 4 steps equal 8 uninterrupted steps
    assert losses(tmp_path / "resumed") == losses(tmp_path / "zero2")
    resumed, whole = weights(tmp_path / "resumed", 8), weights(tmp_path / "zero2", 8)
    assert resumed.keys() == whole.keys()
    for k in whole:
        assert torch.equal(resumed[k], whole[k]), k
    # the converted weights are the project's format: they load into the model as built
    single = weights(tmp_path / "single", 8)
    assert resumed.keys() == single.keys()
    for k in single:
        torch.testing.assert_close(resumed[k], single[k], rtol=0, atol=1e-5)
    ckpt = tmp_path / "resumed" / "checkpoints" / "step_000008"
    assert (ckpt / "deepspeed").is_dir() and not (ckpt / "optimizer.pt").exists()
    _converted_checkpoint_loads(ckpt, single)
    # one process, 2 accumulated micro-batches: the accumulation boundary is DeepSpeed's
    run_distributed(_zero2_one_process, 1, dist_data, tmp_path / "accum")
    assert losses(tmp_path / "accum") == pytest.approx(ref[:4], rel=1e-6, abs=1e-6)
    # a DeepSpeed checkpoint does not resume under DDP / one process: one clear line
    with pytest.raises(CheckpointError, match="written by DeepSpeed.*strategy=deepspeed"):
        train(dist_data, tmp_path / "resumed", 12, resume=True)


def _converted_checkpoint_loads(ckpt: Path, single: dict[str, torch.Tensor]) -> None:
    """eval/generate/export's loader reads the DeepSpeed step directory, and converting the
    engine's directory directly (zero_to_fp32) gives the same tensors."""
    from safetensors.torch import load_file

    from llmtrain.checkpoint.deepspeed import convert_deepspeed_checkpoint
    from llmtrain.checkpoint.inference import load_trained

    loaded = load_trained(ckpt)
    assert loaded.step == 8 and loaded.tokenizer is not None
    for k, v in loaded.model.state_dict().items():
        if k in single:
            torch.testing.assert_close(v, single[k], rtol=0, atol=1e-5)
    out = convert_deepspeed_checkpoint(ckpt, ckpt.parent.parent / "converted", tag="deepspeed")
    again, saved = load_file(out), load_file(ckpt / "model.safetensors")
    assert again.keys() == saved.keys() and all(torch.equal(again[k], saved[k]) for k in saved)


def _run_config(**sets: object):
    from llmtrain.train.config import load_run_config

    return load_run_config(overrides=[f"{k}={v}" for k, v in sets.items()])


def _ds_config(tmp_path: Path, text: str, **sets: object) -> dict:
    from llmtrain.distributed.deepspeed_engine import deepspeed_config
    from llmtrain.distributed.process_group import DistInfo

    path = tmp_path / "ds.json"
    path.write_text(text)
    run = _run_config(**{"distributed.strategy": "deepspeed",
                         "distributed.deepspeed_config": f'"{path}"', **sets})  # fmt: skip
    return deepspeed_config(run.distributed, run.train, DistInfo(0, 2, 0), run)


def test_deepspeed_config_is_filled_from_train_and_checked(tmp_path):
    sets = {"train.batch_size": 16, "train.micro_batch_size": 4, "train.grad_clip": 0.5}
    ds = _ds_config(tmp_path, (CONFIGS / "deepspeed_zero2.json").read_text(), **sets)
    assert ds["train_batch_size"] == 16 and ds["train_micro_batch_size_per_gpu"] == 4
    assert ds["gradient_accumulation_steps"] == 2 and ds["gradient_clipping"] == 0.5
    with pytest.raises(ConfigError, match="train_batch_size=32 but train.batch_size gives 16"):
        _ds_config(tmp_path, '{"train_batch_size": 32}', **sets)
    with pytest.raises(ConfigError, match='"optimizer" section; llmtrain builds the optimizer'):
        _ds_config(tmp_path, '{"optimizer": {"type": "Adam"}}')
    z3_offload = '{"zero_optimization": {"stage": 3, "offload_param": {"device": "cpu"}}}'
    with pytest.raises(ConfigError, match="ZeRO stage 3 with zero_optimization.offload_param"):
        _ds_config(tmp_path, z3_offload)
    z2_param = '{"zero_optimization": {"stage": 2, "offload_param": {"device": "cpu"}}}'
    with pytest.raises(ConfigError, match="offload_param needs ZeRO stage 3"):
        _ds_config(tmp_path, z2_param)
    with pytest.raises(ConfigError, match="optim.name=muon"):
        _ds_config(tmp_path, '{"zero_optimization": {"stage": 3}}', **{"optim.name": "muon"})
    with pytest.raises(ConfigError, match="not a readable JSON file"):
        _ds_config(tmp_path, "{not json")


def test_missing_deepspeed_is_one_line_with_the_extra(monkeypatch):
    from llmtrain.distributed.deepspeed_engine import import_deepspeed

    monkeypatch.setitem(sys.modules, "deepspeed", None)  # import deepspeed -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'llmtrain\[deepspeed\]'") as e:
        import_deepspeed()
    assert "\n" not in str(e.value)


def test_deepspeed_options_without_the_strategy_and_with_tp_are_refused():
    with pytest.raises(ConfigError, match="set distributed.strategy=deepspeed"):
        _run_config(**{"distributed.zero_stage": 2})
    with pytest.raises(ConfigError, match="does not compose with PyTorch tensor parallel"):
        _run_config(**{"distributed.strategy": "deepspeed", "distributed.tensor_parallel": 2})
