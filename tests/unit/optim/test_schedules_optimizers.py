"""The added schedules (inverse-sqrt, exponential, step, WSD) and optimizers (Adafactor,
SGD) with parameter groups."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from llmtrain.optim import OptimConfig, build_optimizer, lr_at

KW = dict(lr=1.0, min_lr=0.01, warmup_steps=10, decay_steps=110)


def test_inverse_sqrt_exponential_step():
    assert lr_at(9, schedule="inverse_sqrt", **KW) == pytest.approx(1.0)
    assert lr_at(39, schedule="inverse_sqrt", **KW) == pytest.approx(0.5)  # sqrt(10/40)
    assert lr_at(60, schedule="exponential", **KW) == pytest.approx(0.1)  # half-way: sqrt
    assert lr_at(110, schedule="exponential", **KW) == pytest.approx(0.01)
    assert [lr_at(s, schedule="step", **KW) for s in (10, 44, 77, 109)] == pytest.approx(
        [1.0, 0.1, 0.01, 0.01]
    )


def test_wsd_is_flat_then_decays_in_the_last_fraction():
    kw = dict(KW, schedule="wsd", decay_fraction=0.2)
    assert lr_at(50, **kw) == lr_at(89, **kw) == 1.0  # stable until 110 - 0.2 * 100 = 90
    assert lr_at(100, **kw) == pytest.approx(0.505)  # half-way down the linear decay
    assert lr_at(110, **kw) == 0.01
    assert lr_at(70, **dict(kw, decay_start=60)) < 1.0  # a planner may start it earlier


@pytest.mark.parametrize("name", ["adafactor", "sgd"])
def test_other_optimizers_train_with_param_groups(name):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Embedding(16, 8), nn.LayerNorm(8), nn.Linear(8, 16))
    opt = build_optimizer(m, OptimConfig(name=name, weight_decay=0.1), lr=0.05)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    x = torch.randint(0, 16, (4, 6))
    losses = []
    for _ in range(20):
        loss = nn.functional.cross_entropy(m(x).flatten(0, 1), x.flatten())
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
