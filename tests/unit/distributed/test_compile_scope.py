"""`train.compile_scope`: what `parallelize` compiles in place — each block (the default, which
FSDP / tensor parallel / checkpoint wrappers need) or the whole forward as one graph."""

from __future__ import annotations

import pytest
import torch

from llmtrain.distributed.config import DistributedConfig
from llmtrain.distributed.parallelize import parallelize
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
