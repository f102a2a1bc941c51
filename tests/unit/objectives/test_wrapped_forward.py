"""Objectives call the module the loop hands them (under DDP, the wrapper), never a method of
the bare model, so the wrapper's forward runs and gradient synchronisation sees every head."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from llmtrain.config.core import config_from_dict
from llmtrain.models import ModelConfig, build_model, get_model_preset
from llmtrain.objectives import ObjectiveConfig, build_objective

V, T = 200, 32
MODELS = {
    "sop": "bert-tiny",
    "nsp": "bert-tiny",
    "mlm": "bert-tiny",
    "electra": "electra-tiny",
    "span": "t5-tiny",
}


@pytest.fixture()
def process_group(tmp_path):
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize("name", list(MODELS))
def test_objective_runs_through_the_ddp_wrapper(process_group, name):
    o = build_objective(name, ObjectiveConfig(), V, T, seed=0)
    fields = {**get_model_preset(MODELS[name]), "vocab_size": V + o.extra_vocab, "block_size": T}
    fields["sentence_head"] = name in ("sop", "nsp")  # MLM alone would leave it untrained
    torch.manual_seed(0)
    model = build_model(config_from_dict(ModelConfig, fields))
    wrapped = DDP(copy.deepcopy(model))
    x = torch.randint(4, V, (4, T), generator=torch.Generator().manual_seed(1))
    batch = o.make_batch((x, x), step=0, micro=0)
    grads = []
    for m in (model, wrapped):
        loss, _ = o.loss(o.forward(m, batch), batch)
        loss.backward()
        grads.append([p.grad for p in m.parameters()])
    assert all(g is not None for g in grads[1])  # every head took part in the wrapped forward
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


def test_mlm_on_a_model_with_a_sentence_head_trains_under_ddp(process_group):
    """bert-* presets carry a SOP/NSP head; MLM never calls it, so it is frozen — else DDP
    raises "Expected to have finished reduction" on the second step."""
    from llmtrain.objectives import freeze_unused_heads

    o = build_objective("mlm", ObjectiveConfig(), V, T, seed=0)
    fields = {**get_model_preset("bert-tiny"), "vocab_size": V + o.extra_vocab, "block_size": T}
    fields["sentence_head"] = True
    model = build_model(config_from_dict(ModelConfig, fields))
    frozen = freeze_unused_heads(model, o)
    assert frozen and all(n.split(".")[0] in ("pooler", "sentence_cls") for n in frozen)
    wrapped = DDP(model)
    x = torch.randint(4, V, (4, T), generator=torch.Generator().manual_seed(1))
    for step in range(3):  # the failure shows at step 2
        batch = o.make_batch((x, x), step=step, micro=0)
        loss, _ = o.loss(o.forward(wrapped, batch), batch)
        loss.backward()
    sop = build_objective("sop", ObjectiveConfig(), V, T, seed=0)
    assert freeze_unused_heads(build_model(config_from_dict(ModelConfig, fields)), sop) == []
