"""Incremental decoding through the KV cache gives the logits of a full recompute."""

from __future__ import annotations

import pytest
import torch

from llmtrain.config.core import config_from_dict
from llmtrain.errors import ConfigError
from llmtrain.models import KVCache, ModelConfig, build_model

V = 61
VARIANTS = {
    "learned-mha": {},
    "rope-mha": {"pos_embedding": "rope"},
    "rope-gqa": {"pos_embedding": "rope", "n_kv_head": 2, "mlp": "swiglu", "norm": "rmsnorm"},
    "learned-mqa": {"n_kv_head": 1},
}


def model_of(**kw):
    torch.manual_seed(0)
    base = {"vocab_size": V, "block_size": 24, "n_layer": 2, "n_head": 4, "n_embd": 32}
    return build_model(config_from_dict(ModelConfig, {**base, **kw})).eval()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_token_by_token_equals_full_forward(variant):
    model = model_of(**VARIANTS[variant])
    idx = torch.randint(0, V, (2, 20))
    full = model(idx)  # (2, 20, V)
    cache = KVCache.for_model(model.cfg, batch_size=2)
    steps = [model(idx[:, :7], cache)]  # prefill
    for t in range(7, 20):
        steps.append(model(idx[:, t : t + 1], cache))
    assert cache.pos == 20
    assert (torch.cat(steps, dim=1) - full).abs().max() < 1e-5


@pytest.mark.parametrize("variant", ["learned-mha", "rope-gqa"])
def test_chunks_appended_to_a_cache_use_an_offset_causal_mask(variant):
    model = model_of(**VARIANTS[variant])
    idx = torch.randint(0, V, (1, 18))
    cache = KVCache.for_model(model.cfg, batch_size=1, max_len=18)
    parts = [model(idx[:, a:b], cache) for a, b in ((0, 5), (5, 11), (11, 18))]
    assert (torch.cat(parts, dim=1) - model(idx)).abs().max() < 1e-5


def test_cache_overflow_and_bad_length_are_config_errors():
    model = model_of()
    cache = KVCache.for_model(model.cfg, batch_size=1, max_len=4)
    with pytest.raises(ConfigError, match="overflow"):
        model(torch.zeros(1, 5, dtype=torch.long), cache)
    with pytest.raises(ConfigError, match="block_size"):
        KVCache.for_model(model.cfg, batch_size=1, max_len=25)


def test_reset_reuses_the_cache():
    model = model_of(pos_embedding="rope")
    idx = torch.randint(0, V, (1, 6))
    cache = KVCache.for_model(model.cfg, batch_size=1, max_len=8)
    first = model(idx, cache)
    cache.reset()
    assert torch.equal(model(idx, cache), first)
