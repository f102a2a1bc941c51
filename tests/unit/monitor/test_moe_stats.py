import math

import torch

from llmtrain.config import config_from_dict
from llmtrain.models import ModelConfig, build_model, get_model_preset
from llmtrain.monitor.probes import moe_stats


def test_moe_layers_report_load_and_entropy():
    fields = {**get_model_preset("mixtral-tiny"), "vocab_size": 64, "block_size": 16}
    model = build_model(config_from_dict(ModelConfig, fields))
    assert moe_stats(model)["moe_load"]  # before any forward: zeros, still one row per layer
    model(torch.randint(0, 64, (2, 16)))
    stats = moe_stats(model)
    n_layers, n_experts = model.cfg.n_layer, model.cfg.n_experts
    assert len(stats["moe_load"]) == n_layers and len(stats["moe_router_entropy"]) == n_layers
    for load, ent in zip(stats["moe_load"], stats["moe_router_entropy"]):
        assert len(load) == n_experts and abs(sum(load) - 1.0) < 1e-3
        assert 0.0 < ent <= math.log(n_experts) + 1e-6


def test_dense_models_report_nothing():
    fields = {**get_model_preset("gpt2-tiny"), "vocab_size": 64}
    assert moe_stats(build_model(config_from_dict(ModelConfig, fields))) == {}
