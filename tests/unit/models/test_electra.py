"""ELECTRA model: the generator shares the discriminator's embedding tensors and is smaller,
every tensor is initialised, samples replace only the masked positions (drawn from the
generator's distribution), and the published ELECTRA-Small size comes out of its preset."""

from __future__ import annotations

import pytest
import torch

from llmtrain.config.core import config_from_dict
from llmtrain.errors import ConfigError
from llmtrain.models import ModelConfig, build_model, get_model_preset, init_weights
from llmtrain.models.electra import SHARED, Electra


def electra_cfg(**kw) -> ModelConfig:
    fields = {**get_model_preset("electra-tiny"), "vocab_size": 100, "block_size": 16, **kw}
    return config_from_dict(ModelConfig, fields)


def test_generator_shares_embeddings_and_is_smaller():
    model = build_model(electra_cfg())
    assert isinstance(model, Electra)
    for name in SHARED:
        assert getattr(model.gen, name) is getattr(model.disc, name), name
    assert model.gen.cfg.n_embd == 16 and model.disc.cfg.n_embd == 64  # 1/4 of the width
    assert model.gen.emb_proj.in_features == 32 == model.gen.head_dense.out_features
    n_gen = sum(p.numel() for n, p in model.gen.named_parameters() if not n.startswith(SHARED))
    n_disc = sum(p.numel() for n, p in model.disc.named_parameters() if not n.startswith(SHARED))
    assert n_gen < n_disc / 4


def test_init_writes_every_tensor():
    with torch.device("meta"):
        model = Electra(electra_cfg())
    model.to_empty(device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(12345.0)
    init_weights(model, "normal")
    assert all((p != 12345.0).all() for p in model.parameters())


def test_samples_replace_only_masked_positions_from_the_generator():
    torch.manual_seed(0)
    model = build_model(electra_cfg()).eval()
    with torch.no_grad():
        model.gen.head_bias[7] = 1e4  # the generator is certain: token 7
    idx = torch.randint(4, 100, (2, 16))
    masked = torch.zeros(2, 16, dtype=torch.bool)
    masked[0, 3] = masked[1, 10] = True
    u = torch.rand(2, 16)
    gen, disc, corrupted = model(idx, masked, u)
    assert gen.shape == (2, 100) and disc.shape == (2, 16)  # the generator's head: masked only
    assert (corrupted[masked] == 7).all()
    assert torch.equal(corrupted[~masked], idx[~masked])
    positions = masked.flatten().nonzero().squeeze(1)  # what the objective passes: (n,)
    gen2, disc2, corrupted2 = model(idx, positions, u)
    assert torch.equal(gen2, gen) and torch.equal(disc2, disc)
    assert torch.equal(corrupted2, corrupted)


def test_inverse_cdf_sampling_follows_the_distribution():
    torch.manual_seed(0)
    model = build_model(electra_cfg(vocab_size=8)).eval()
    with torch.no_grad():
        model.gen.head_dense.weight.zero_()  # logits = head bias, the same at every position
        model.gen.head_norm.weight.zero_()
        model.gen.head_norm.bias.zero_()
        model.gen.head_bias.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4, 0.0, 0.0, 0.0, 0.0]).log())
    idx = torch.zeros(64, 16, dtype=torch.long)
    masked = torch.ones(64, 16, dtype=torch.bool)
    _, _, corrupted = model(idx, masked, torch.rand(64, 16))
    freq = torch.bincount(corrupted.flatten(), minlength=8).float() / corrupted.numel()
    assert torch.allclose(freq[:4], torch.tensor([0.1, 0.2, 0.3, 0.4]), atol=0.03)
    assert freq[4:].sum() == 0


def test_electra_small_has_the_published_size():
    with torch.device("meta"):
        model = Electra(config_from_dict(ModelConfig, get_model_preset("electra-small")))
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(14e6, rel=0.03)


def test_generator_needs_an_encoder_without_its_own_head():
    with pytest.raises(ConfigError, match="head_transform"):
        electra_cfg(head_transform=True).validate()
    with pytest.raises(ConfigError, match="architecture"):
        electra_cfg(architecture="decoder", norm_position="pre").validate()
