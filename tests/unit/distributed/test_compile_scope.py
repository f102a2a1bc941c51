"""`train.compile_scope`: what `parallelize` compiles in place — each block (the default, which
FSDP / tensor parallel / checkpoint wrappers need) or the whole forward as one graph; and
`train.compile_mode`, Inductor's mode for those graphs (CUDA-graph modes: one process)."""

from __future__ import annotations

import pytest
import torch

from llmtrain.distributed.config import DistributedConfig
from llmtrain.distributed.parallelize import (
    captures_cuda_graphs,
    check_compile_mode,
    inductor_mode,
    parallelize,
)
from llmtrain.distributed.process_group import DistInfo
from llmtrain.errors import ConfigError
from llmtrain.models import build_model
from llmtrain.models.config import ModelConfig
from llmtrain.models.presets import get_model_preset

CPU = torch.device("cpu")


def tiny() -> torch.nn.Module:
    return build_model(ModelConfig(**{**get_model_preset("gpt2-tiny"), "vocab_size": 64}), CPU)


def compiled(module: torch.nn.Module) -> bool:
    return module._compiled_call_impl is not None  # what Module.compile() sets


@pytest.mark.parametrize("scope", ["blocks", "model"])
def test_scope_picks_what_is_compiled(scope):
    model = tiny()
    out = parallelize(model, DistributedConfig(), DistInfo(0, 1, 0), device=CPU, compile=True,
                      compile_scope=scope)  # fmt: skip
    assert out is model and compiled(model) == (scope == "model")
    assert all(compiled(b) == (scope == "blocks") for b in model.blocks)
    assert not any(k.startswith("_orig_mod") for k in model.state_dict())  # names unchanged


def test_no_compile_leaves_everything_eager():
    model = tiny()
    parallelize(model, DistributedConfig(), DistInfo(0, 1, 0), device=CPU, compile_scope="model")
    assert not compiled(model) and not any(compiled(b) for b in model.blocks)


def test_whole_model_graph_refuses_per_block_wrappers():
    cfg = DistributedConfig(activation_checkpointing=True)
    with pytest.raises(ConfigError, match="compile_scope=blocks"):
        parallelize(tiny(), cfg, DistInfo(0, 1, 0), device=CPU, compile=True,
                    compile_scope="model", activation_checkpointing=True)  # fmt: skip


@pytest.mark.parametrize("mode", ["default", "max-autotune-no-cudagraphs", "reduce-overhead"])
def test_compile_mode_reaches_every_compiled_graph(monkeypatch, mode):
    modes = []
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: modes.append(kw.get("mode")) or real(fn))
    model = tiny()
    parallelize(model, DistributedConfig(), DistInfo(0, 1, 0), device=CPU, compile=True,
                compile_mode=mode)  # fmt: skip
    assert modes == [None if mode == "default" else mode] * len(model.blocks)


@pytest.mark.parametrize("mode", ["reduce-overhead", "max-autotune"])
def test_cuda_graph_modes_refuse_more_processes_and_deepspeed(mode):
    with pytest.raises(ConfigError, match="one process without DeepSpeed .this run: 2 processes"):
        check_compile_mode(mode, DistributedConfig(), DistInfo(0, 2, 0))
    with pytest.raises(ConfigError, match="this run: DeepSpeed"):
        check_compile_mode(mode, DistributedConfig(strategy="deepspeed"), DistInfo(0, 1, 0))
    assert check_compile_mode("max-autotune-no-cudagraphs", DistributedConfig(),
                              DistInfo(0, 2, 0)) == "max-autotune-no-cudagraphs"  # fmt: skip


def test_cuda_graphs_only_where_inductor_captures_them():
    cuda = torch.device("cuda", 0)
    assert captures_cuda_graphs("reduce-overhead", cuda, compiled=True)
    assert captures_cuda_graphs("max-autotune", cuda, compiled=True)
    assert not captures_cuda_graphs("reduce-overhead", cuda, compiled=False)
    assert not captures_cuda_graphs("reduce-overhead", CPU, compiled=True)  # Inductor skips them
    assert not captures_cuda_graphs("max-autotune-no-cudagraphs", cuda, compiled=True)


def test_the_loss_compiles_in_the_same_mode_without_cuda_graphs():
    assert (
        inductor_mode("default") is None and inductor_mode("reduce-overhead") == "reduce-overhead"
    )
    assert inductor_mode("reduce-overhead", cuda_graphs=False) is None
    assert inductor_mode("max-autotune", cuda_graphs=False) == "max-autotune-no-cudagraphs"
    assert inductor_mode("max-autotune-no-cudagraphs", cuda_graphs=False) == (
        "max-autotune-no-cudagraphs"
    )
