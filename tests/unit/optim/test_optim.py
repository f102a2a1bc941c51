import math

import pytest
import torch
from torch import nn

from llmtrain.optim import OptimConfig, build_optimizer, lr_at, param_groups


def test_warmup_then_cosine_to_min():
    kw = dict(lr=1.0, min_lr=0.1, warmup_steps=10, decay_steps=110)
    assert lr_at(0, **kw) == pytest.approx(0.1)
    assert lr_at(9, **kw) == pytest.approx(1.0)
    assert lr_at(10, **kw) == pytest.approx(1.0)
    assert lr_at(60, **kw) == pytest.approx(0.55)  # half-way down the cosine
    assert lr_at(110, **kw) == pytest.approx(0.1)
    assert lr_at(500, **kw) == pytest.approx(0.1)
    values = [lr_at(s, **kw) for s in range(10, 110)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_linear_and_constant():
    kw = dict(lr=1.0, min_lr=0.0, warmup_steps=0, decay_steps=100)
    assert lr_at(50, schedule="linear", **kw) == pytest.approx(0.5)
    assert lr_at(99, schedule="constant", **kw) == 1.0
    assert not math.isnan(lr_at(0, **kw))


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.lin = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight  # tied


def test_param_groups_decay_only_linear_matrices():
    m = Tiny()
    decay, no_decay = param_groups(m, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(m.lin.weight)}
    assert id(m.emb.weight) in {id(p) for p in no_decay["params"]}
    n_unique = len({id(p) for p in m.parameters()})
    assert len(decay["params"]) + len(no_decay["params"]) == n_unique


def test_build_optimizer_steps():
    m = Tiny()
    opt = build_optimizer(m, OptimConfig(), lr=1e-2)
    before = m.lin.weight.detach().clone()
    m.lin(torch.ones(1, 4)).sum().backward()
    opt.step()
    assert not torch.equal(before, m.lin.weight)
