"""ELECTRA objective: the loss is generator MLM + 50 · mask_prob · per-token BCE, the batch is
a pure function of (seed, step, micro), AUC agrees with pairwise counting, and the config
pairs the objective with a generator."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from llmtrain.config.core import config_from_dict
from llmtrain.errors import ConfigError
from llmtrain.models import ModelConfig, build_model, get_model_preset
from llmtrain.objectives import ObjectiveConfig, build_objective, check_objective
from llmtrain.objectives.electra import roc_auc
from tests.unit.objectives.counting import counting_windows, train_on_counting


def setup():
    fields = {**get_model_preset("electra-tiny"), "vocab_size": 101, "block_size": 32}
    torch.manual_seed(0)
    model = build_model(config_from_dict(ModelConfig, fields))
    return model, build_objective("electra", ObjectiveConfig(), 100, 32, seed=3)


def test_loss_is_generator_mlm_plus_weighted_discriminator_bce():
    model, obj = setup()
    x = torch.randint(4, 100, (4, 32))
    batch = obj.make_batch((x, x), step=0, micro=0)
    out = obj.forward(model, batch)
    loss_sum, metrics = obj.loss(out, batch)
    masked = batch.targets[batch.targets != -100]  # the generator's head ran there only
    assert out["logits"].shape == (masked.numel(), 101)
    mlm = F.cross_entropy(out["logits"], masked, reduction="sum")
    replaced = (out["corrupted"] != x).float()
    bce = F.binary_cross_entropy_with_logits(out["disc"], replaced, reduction="sum")
    assert torch.allclose(loss_sum, mlm + 50.0 * 0.15 * bce, rtol=1e-5)
    assert int(metrics["rtd_count"]) == x.numel()
    assert float(metrics["replaced"]) <= batch.n_targets  # only masked positions change
    loss_sum.backward()
    assert model.gen.blocks[0].attn.qkv.weight.grad.abs().sum() > 0  # both networks learn
    assert model.rtd_out.weight.grad.abs().sum() > 0


def test_batches_are_reproducible_and_fresh_each_step():
    _, obj = setup()
    x = torch.randint(4, 100, (4, 32))
    a, b = obj.make_batch((x, x), step=5, micro=1), obj.make_batch((x, x), step=5, micro=1)
    c = obj.make_batch((x, x), step=6, micro=1)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert all(torch.equal(a.extra[k], b.extra[k]) for k in a.extra)
    assert not torch.equal(a.extra["uniforms"], c.extra["uniforms"])


def test_roc_auc_matches_pairwise_counting():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 5, (200,), generator=g).float()  # many ties
    labels = torch.rand(200, generator=g) < 0.3
    pos, neg = scores[labels], scores[~labels]
    diff = pos[:, None] - neg[None, :]
    expected = ((diff > 0).double() + 0.5 * (diff == 0).double()).mean()
    assert roc_auc(scores, labels) == pytest.approx(float(expected), abs=1e-9)
    assert roc_auc(torch.arange(4.0), torch.tensor([0, 0, 1, 1]).bool()) == 1.0


def test_objective_and_generator_go_together():
    electra = config_from_dict(ModelConfig, get_model_preset("electra-tiny"))
    bert = config_from_dict(ModelConfig, get_model_preset("bert-tiny"))
    check_objective("electra", electra)
    with pytest.raises(ConfigError, match="generator_scale"):
        check_objective("electra", bert)
    with pytest.raises(ConfigError, match="generator_scale"):
        check_objective("mlm", electra)


def test_discriminator_learns_replacements_it_can_see():
    """On windows that count upwards a replaced token breaks the count, so a working
    pipeline (generator sample at the masked positions, labels = corrupted != original,
    scores aligned with them) detects replacements far above chance (AUC 0.5)."""
    V, T = 120, 32
    obj = build_objective("electra", ObjectiveConfig(), V, T, seed=0)
    fields = {**get_model_preset("electra-tiny"), "vocab_size": V + 1, "block_size": T}
    fields |= {"pos_embedding": "rope", "norm_position": "pre", "embedding_size": None}
    torch.manual_seed(0)
    model = build_model(config_from_dict(ModelConfig, fields))
    counting = counting_windows(V, T)
    train_on_counting(obj, model, counting, lr=2e-3)
    x = counting(128)
    batch = obj.make_batch((x, x), step=-1, micro=0)
    with torch.no_grad():
        out = obj.forward(model, batch)
    assert roc_auc(out["disc"], out["corrupted"] != x) > 0.85
