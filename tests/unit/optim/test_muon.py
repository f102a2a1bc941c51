"""`optim.name = "muon"`: Muon on hidden matrices, AdamW on the rest; it trains a tiny model
and its state round-trips through `torch.load(weights_only=True)` exactly."""

from __future__ import annotations

import io

import torch
from torch import nn

from llmtrain.models import build_model
from llmtrain.models.config import ModelConfig
from llmtrain.optim import OptimConfig, build_optimizer
from llmtrain.optim.muon import MuonAdamW


def tiny(tie: bool = False) -> nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=64,
                      tie_embeddings=tie)  # fmt: skip
    return build_model(cfg, device=torch.device("cpu"))


def train(model: nn.Module, opt: torch.optim.Optimizer, steps: int, seed: int = 1) -> list[float]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 64, (8, 17), generator=g)
    losses = []
    for _ in range(steps):
        logits = model(x[:, :-1])
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


def test_groups_put_only_hidden_matrices_on_muon():
    for tie in (False, True):
        model = tiny(tie)
        opt = build_optimizer(model, OptimConfig(name="muon"), lr=1e-3)
        assert isinstance(opt, MuonAdamW)
        muon = {id(p) for g in opt.muon.param_groups for p in g["params"]}
        names = {n for n, p in model.named_parameters() if id(p) in muon}
        assert names and all(p.ndim == 2 for p in model.parameters() if id(p) in muon)
        assert not any(n.startswith(("wte", "wpe", "lm_head")) for n in names)
        assert id(model.head_weight) not in muon
        n_all = sum(len(g["params"]) for g in opt.param_groups)
        assert n_all == len(list(model.parameters()))


def test_muon_trains_a_tiny_model_and_one_lr_reaches_both():
    model = tiny()
    opt = build_optimizer(model, OptimConfig(name="muon", weight_decay=0.0), lr=3e-3)
    for group in opt.param_groups:  # what the trainer does each step
        group["lr"] = 3e-3
    assert {g["lr"] for g in opt.muon.param_groups + opt.adamw.param_groups} == {3e-3}
    losses = train(model, opt, 30)
    assert losses[-1] < 0.7 * losses[0]


def test_state_roundtrips_with_weights_only_and_continues_bitwise():
    a = tiny()
    opt_a = build_optimizer(a, OptimConfig(name="muon"), lr=3e-3)
    train(a, opt_a, 3)
    buf = io.BytesIO()
    torch.save({"model": a.state_dict(), "opt": opt_a.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    b = tiny()
    b.load_state_dict(saved["model"])
    opt_b = build_optimizer(b, OptimConfig(name="muon"), lr=3e-3)
    opt_b.load_state_dict(saved["opt"])
    for group in opt_b.param_groups:  # the LR still reaches the inner optimizers after load
        group["lr"] = 1e-3
    for group in opt_a.param_groups:
        group["lr"] = 1e-3
    assert train(a, opt_a, 3, seed=2) == train(b, opt_b, 3, seed=2)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
