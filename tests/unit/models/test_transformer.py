"""Decoder shapes for every option combination, causality, config errors and bf16 autocast."""

from __future__ import annotations

import itertools

import pytest
import torch

from llmtrain.config.core import config_from_dict
from llmtrain.errors import ConfigError
from llmtrain.models import ModelConfig, Transformer, build_model

V, T = 97, 16


def tiny(**kw) -> ModelConfig:
    base = {"vocab_size": V, "block_size": 32, "n_layer": 2, "n_head": 4, "n_embd": 32}
    return config_from_dict(ModelConfig, {**base, **kw})


OPTION_GRID = list(
    itertools.product(
        ["learned", "rope"], ["layernorm", "rmsnorm"], ["gelu", "gelu_tanh", "swiglu"], [None, 2, 1]
    )
)


@pytest.mark.parametrize(("pos", "norm", "mlp", "kv"), OPTION_GRID)
def test_forward_shapes_every_option(pos, norm, mlp, kv):
    torch.manual_seed(0)
    cfg = tiny(
        pos_embedding=pos, norm=norm, mlp=mlp, n_kv_head=kv, bias=kv != 1, tie_embeddings=kv is None
    )
    model = build_model(cfg)
    idx = torch.randint(0, V, (3, T))
    logits = model(idx)
    assert logits.shape == (3, T, V)
    assert torch.isfinite(logits).all()
    assert model.forward_hidden(idx).shape == (3, T, cfg.n_embd)
    logits.sum().backward()  # every parameter takes part in the graph
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("pos", ["learned", "rope"])
def test_causal_future_tokens_do_not_change_the_past(pos):
    torch.manual_seed(0)
    model = build_model(tiny(pos_embedding=pos)).eval()
    idx = torch.randint(0, V, (2, T))
    changed = idx.clone()
    changed[:, 10:] = (changed[:, 10:] + 1) % V
    a, b = model(idx), model(changed)
    torch.testing.assert_close(a[:, :10], b[:, :10], rtol=0, atol=1e-6)
    assert (a[:, 10:] - b[:, 10:]).abs().max() > 1e-4


def test_sequence_longer_than_block_size_is_a_config_error():
    model = build_model(tiny(block_size=8))
    with pytest.raises(ConfigError, match="block_size"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_zero_vocab_is_rejected_at_build():
    with pytest.raises(ConfigError, match="vocab_size"):
        build_model(ModelConfig(n_layer=1, n_head=1, n_embd=8, block_size=8))


def test_n_embd_not_divisible_by_n_head_is_a_config_error():
    with pytest.raises(ConfigError, match="divisible"):
        tiny(n_embd=30)
    with pytest.raises(ConfigError, match="divisible"):
        Transformer(ModelConfig(vocab_size=V, n_embd=30, n_head=4))


def test_tied_embeddings_share_storage_and_untied_do_not():
    tied = build_model(tiny(tie_embeddings=True))
    assert tied.head_weight.data_ptr() == tied.wte.weight.data_ptr()
    assert "lm_head.weight" not in tied.state_dict()
    untied = build_model(tiny(tie_embeddings=False))
    assert untied.head_weight.data_ptr() != untied.wte.weight.data_ptr()


@pytest.mark.parametrize("style", ["gpt2", "llama"])
def test_bf16_autocast_forward_backward_close_to_fp32(style):
    torch.manual_seed(0)
    opts = (
        {}
        if style == "gpt2"
        else {"pos_embedding": "rope", "norm": "rmsnorm", "mlp": "swiglu", "n_kv_head": 2}
    )
    model = build_model(tiny(**opts))
    idx = torch.randint(0, V, (2, T))
    ref = model(idx)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = model(idx)
    assert low.dtype == torch.bfloat16
    assert torch.isfinite(low).all()
    # bf16 keeps ~3 significant digits; logits here are O(1).
    assert (low.float() - ref).abs().max() < 5e-2
    low.float().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_dropout_is_active_in_training_only():
    torch.manual_seed(0)
    model = build_model(tiny(dropout=0.5))
    idx = torch.randint(0, V, (2, T))
    assert not torch.equal(model(idx), model(idx))
    model.eval()
    assert torch.equal(model(idx), model(idx))


def test_model_cast_to_bf16_trains():
    torch.manual_seed(0)
    model = build_model(tiny(pos_embedding="rope", norm="rmsnorm")).to(torch.bfloat16)
    logits = model(torch.randint(0, V, (2, T)))
    assert logits.dtype == torch.bfloat16
    logits.float().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
