"""Benchmarks run end to end on a CPU at tiny sizes: bench/fused_loss_op.py (the GPU script's
`op` stage) with its compiled engines — the plain head with its loss compiled and the op with
its per-chunk pass compiled (forced on: the CPU's default keeps the eager passes) — and
bench/moe_dispatch.py, whose per-expert loop must compute what the layer computes."""

from __future__ import annotations

import json

import torch

from llmtrain.config.core import config_from_dict
from llmtrain.models import ModelConfig
from llmtrain.models.moe import MoE
from llmtrain.objectives import fused_loss

from .conftest import load_file


def load(name: str):
    return load_file(f"bench/{name}.py")


def test_op_bench_with_its_compiled_engines(capsys, monkeypatch):
    bench = load("fused_loss_op")
    monkeypatch.setattr(fused_loss, "EAGER_PASS_DEVICES", fused_loss.EAGER_PASS_DEVICES)
    argv = ["--rounds", "1", "--threads", "1", "--width", "16", "--shapes", "96x300",
            "--compiled", "--whole-chunk"]  # fmt: skip
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    (row,) = result["rows"]
    assert result["device"] == "cpu" and row["rows"] == 96 and row["vocab"] == 300
    for key in ("plain_ms", "fused_ms", "whole_ms", "plain_compiled_ms", "fused_compiled_ms"):
        assert row[key] > 0, key
    ratio = row["plain_compiled_ms"] / row["fused_compiled_ms"]  # of the rounded times
    assert abs(row["compiled_ratio"] - ratio) < 2e-3 * ratio
    assert "plain_c/fused_c" in out


def test_moe_bench_compares_the_same_layer(capsys, monkeypatch):
    bench = load("moe_dispatch")
    monkeypatch.setattr(bench, "SHAPES", [(4, 16, 32, 64)])
    assert bench.main(["--rounds", "1", "--threads", "1", "--factors", "0", "0.5"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]
    assert [r["capacity"] for r in rows] == [0.0, 0.5] and all(r["ratio"] > 0 for r in rows)
    # the reference loop is the layer: the same output and aux loss, dropless or not
    for factor in (0.0, 0.5):
        cfg = config_from_dict(ModelConfig, {
            "vocab_size": 64, "block_size": 64, "n_layer": 1, "n_head": 4, "n_embd": 16,
            "intermediate_size": 32, "mlp": "swiglu", "n_experts": 4, "moe_top_k": 2,
            "moe_capacity_factor": factor})  # fmt: skip
        torch.manual_seed(0)
        ours = MoE(cfg)
        for w in ours.parameters():  # (a bare layer's weights are uninitialised)
            torch.nn.init.normal_(w, std=0.1)
        loop = bench.LoopMoE(cfg)
        loop.load_state_dict(ours.state_dict())
        x = torch.randn(2, 32, 16)
        torch.testing.assert_close(loop(x), ours(x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(loop.aux_loss, ours.aux_loss)
        assert torch.equal(loop.tokens_per_expert, ours.tokens_per_expert)
