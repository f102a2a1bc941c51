"""distributed.tensor_parallel (PyTorch DTensor) on gloo: a Llama-style model (GQA, SwiGLU,
RoPE, RMSNorm) split 2 ways computes the logits and every gradient of one process; TP=2
training equals one process within fp32 tolerance; its DCP checkpoint reshards TP=2 → one
process → TP=2; FSDP2 × TP on a 2 × 2 mesh trains like one process; bad degrees are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llmtrain.errors import ConfigError

from .conftest import run_distributed
from .test_data_parallel import losses, train, weights

TP2 = {"distributed.tensor_parallel": 2}
LLAMA = dict(vocab_size=64, block_size=16, n_layer=2, n_head=4, n_kv_head=2, n_embd=32,
             mlp="swiglu", pos_embedding="rope", norm="rmsnorm", bias=False)  # fmt: skip


def _llama_grads_match(out_dir: Path) -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor

    from llmtrain.distributed import DistributedConfig, init_distributed
    from llmtrain.distributed.tensor_parallel import apply_tensor_parallel
    from llmtrain.models import build_model
    from llmtrain.models.config import ModelConfig

    init_distributed(DistributedConfig(tensor_parallel=2), "cpu")
    x = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    ref = build_model(ModelConfig(**LLAMA))
    torch.manual_seed(0)
    tp = build_model(ModelConfig(**LLAMA))
    apply_tensor_parallel(tp, init_device_mesh("cpu", (2,)))
    for m in (ref, tp):
        m(x).float().pow(2).mean().backward()
    assert isinstance(tp.blocks[0].attn.qkv.weight, DTensor)
    assert tp.blocks[0].attn.n_head == 2 and tp.blocks[0].attn.n_kv_head == 1  # per rank
    torch.testing.assert_close(tp(x), ref(x), rtol=0, atol=1e-6)
    for (name, p), (_, q) in zip(tp.named_parameters(), ref.named_parameters()):
        grad = p.grad.full_tensor() if isinstance(p.grad, DTensor) else p.grad
        torch.testing.assert_close(grad, q.grad, rtol=1e-5, atol=1e-6, msg=name)
    # sparse prediction (the head at some positions only) through the TP plan
    positions = torch.tensor([0, 5, 17, 31])  # flat indices into (B·T)
    want = ref(x)
    torch.testing.assert_close(tp(x, positions=positions), want.flatten(0, 1)[positions],
                               rtol=0, atol=1e-6)  # fmt: skip
    if dist.get_rank() == 0:
        (out_dir / "ok").write_text("grads match")


def test_llama_blocks_split_two_ways_compute_the_same_grads(tmp_path):
    run_distributed(_llama_grads_match, 2, tmp_path)
    assert (tmp_path / "ok").read_text() == "grads match"


def _train_tp(data: Path, run: Path, steps: int, resume: bool = False, **extra: object) -> None:
    train(data, run, steps, resume, **{**TP2, **extra})


def test_tp2_trains_like_one_process_and_its_checkpoint_reshards(dist_data, tmp_path):
    """TP=2 for 4 steps (DCP checkpoint) → one process to 8 → TP=2 to 12, against an
    uninterrupted single process: the same curve within fp32 tolerance."""
    train(dist_data, tmp_path / "ref", 12)
    run = tmp_path / "tp"
    run_distributed(_train_tp, 2, dist_data, run, 4)
    ckpt = run / "checkpoints" / "step_000004"
    assert (ckpt / "dcp" / ".metadata").is_file() and (ckpt / "model.safetensors").is_file()
    train(dist_data, run, 8, resume=True)  # TP=1: one process, no process group
    run_distributed(_train_tp, 2, dist_data, run, 12, True)
    ref = losses(tmp_path / "ref")
    assert len(ref) == 12 and ref[-1] < ref[0]
    assert losses(run) == pytest.approx(ref, rel=1e-5, abs=1e-5)
    got, want = weights(run, 12), weights(tmp_path / "ref", 12)
    assert got.keys() == want.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-4, atol=1e-5)


def _train_fsdp_tp(data: Path, run: Path) -> None:
    train(data, run, 4, **{**TP2, "distributed.strategy": "fsdp"})


def test_fsdp_x_tp_on_a_2x2_mesh_trains_like_one_process(dist_data, tmp_path):
    train(dist_data, tmp_path / "ref", 4)
    run_distributed(_train_fsdp_tp, 4, dist_data, tmp_path / "2d")
    assert losses(tmp_path / "2d") == pytest.approx(losses(tmp_path / "ref"), rel=1e-5)


def test_bad_tensor_parallel_degrees_are_one_line_errors():
    from llmtrain.distributed import DistributedConfig
    from llmtrain.distributed.process_group import check_tensor_parallel
    from llmtrain.distributed.tensor_parallel import check_tensor_parallel_model
    from llmtrain.models import build_model
    from llmtrain.models.config import ModelConfig

    model = build_model(ModelConfig(**{**LLAMA, "n_head": 6, "n_kv_head": 3, "n_embd": 48}))
    with pytest.raises(ConfigError, match="tensor_parallel=4 does not divide model.n_head=6"):
        check_tensor_parallel_model(model, 4)
    with pytest.raises(ConfigError, match="tensor_parallel=2 does not divide model.n_kv_head=3"):
        check_tensor_parallel_model(model, 2)
    with pytest.raises(ConfigError, match="tensor_parallel=2 does not divide the world size 3"):
        check_tensor_parallel(DistributedConfig(tensor_parallel=2), 3)
    with pytest.raises(ConfigError, match="tensor_parallel=2 does not divide the world size 1"):
        check_tensor_parallel(DistributedConfig(tensor_parallel=2), 1)
    from llmtrain.distributed import DistInfo, parallelize

    with pytest.raises(ConfigError, match="needs distributed.strategy=fsdp .* not ddp"):
        parallelize(model, DistributedConfig(tensor_parallel=2), DistInfo(0, 4, 0, tp=2),
                    device=torch.device("cpu"))  # fmt: skip
    moe = build_model(ModelConfig(**{**LLAMA, "n_experts": 2}))
    with pytest.raises(ConfigError, match="does not support model.n_experts > 0"):
        check_tensor_parallel_model(moe, 2)
