"""Sparse prediction: objectives whose targets are a fraction of the positions (masked LM,
SOP/NSP, prefix LM, SFT, ELECTRA's generator) run the LM head at those positions only. The
loss, every gradient and the eval counts equal the dense head's (the same objective with
`sparse_head = False`), the positions are computed with the batch on the host and a slice
of a batch recounts them (the FLOP count: tests/integration/test_objectives_train.py)."""

from __future__ import annotations

import copy

import pytest
import torch

from llmtrain.config.core import config_from_dict
from llmtrain.models import ModelConfig, build_model, get_model_preset
from llmtrain.objectives import IGNORE_INDEX, ObjectiveConfig, build_objective
from llmtrain.objectives.base import Tally, head_positions
from llmtrain.objectives.sft import SFT

V, T = 200, 32
SPARSE = {"mlm": "bert-tiny", "sop": "bert-tiny", "nsp": "bert-tiny", "prefix_lm": "gpt2-tiny"}


def setup(name: str):
    o = build_objective(name, ObjectiveConfig(fused_loss="off"), V, T, seed=0)  # logits
    fields = {**get_model_preset(SPARSE[name]), "vocab_size": V + o.extra_vocab, "block_size": T}
    fields["sentence_head"] = name in ("sop", "nsp")
    torch.manual_seed(0)
    return o, build_model(config_from_dict(ModelConfig, fields))


def loss_and_grads(o, model, batch):
    model.zero_grad(set_to_none=True)
    out = o.forward(model, batch)
    loss, counts = o.loss(out, batch)
    loss.backward()
    return out, loss.detach(), counts, {n: p.grad.clone() for n, p in model.named_parameters()
                                        if p.grad is not None}  # fmt: skip


@pytest.mark.parametrize("name", list(SPARSE))
def test_sparse_head_equals_the_dense_head(name):
    o, model = setup(name)
    assert o.sparse_head
    x = torch.randint(4, V, (4, T), generator=torch.Generator().manual_seed(1))
    sparse = o.make_batch((x, x), step=3, micro=1)
    dense_o = copy.copy(o)
    dense_o.sparse_head = False
    dense = dense_o.make_batch((x, x), step=3, micro=1)
    assert dense.predict is None and torch.equal(dense.targets, sparse.targets)
    keep = sparse.targets != IGNORE_INDEX
    assert torch.equal(sparse.predict, keep.flatten().nonzero().squeeze(1))
    assert sparse.n_predicted == int(keep.sum()) < x.numel()

    out_s, loss_s, counts_s, grads_s = loss_and_grads(o, model, sparse)
    out_d, loss_d, counts_d, grads_d = loss_and_grads(dense_o, model, dense)
    assert out_s["logits"].shape == (int(keep.sum()), V + o.extra_vocab)
    assert out_d["logits"].shape[:2] == (4, T)
    torch.testing.assert_close(out_s["logits"], out_d["logits"][keep], rtol=0, atol=1e-6)
    torch.testing.assert_close(loss_s, loss_d, rtol=1e-6, atol=0)
    assert counts_s.keys() == counts_d.keys()
    for k in counts_s:
        assert int(counts_s[k]) == int(counts_d[k]), k
    assert grads_s.keys() == grads_d.keys()
    for k in grads_d:
        torch.testing.assert_close(grads_s[k], grads_d[k], rtol=1e-5, atol=1e-7, msg=k)

    tallies = []
    for obj, batch, out in ((o, sparse, out_s), (dense_o, dense, out_d)):
        tally = Tally()
        obj.eval_step(out, batch, tally)
        tallies.append(obj.report(tally))
    assert tallies[0] == pytest.approx(tallies[1], rel=1e-6)


def test_sft_head_runs_on_the_assistant_tokens_only():
    o = SFT(V, ObjectiveConfig(fused_loss="off"))  # the logits path
    x = torch.randint(4, V, (3, T), generator=torch.Generator().manual_seed(2))
    y = torch.full((3, T), IGNORE_INDEX)
    y[0, 10:20], y[1, 5:8], y[2, 30:] = x[0, 11:21], x[1, 6:9], 7  # answers; padding elsewhere
    batch = o.make_batch({"x": x, "y": y})
    assert batch.n_predicted == batch.n_targets == 10 + 3 + 2
    torch.manual_seed(0)
    model = build_model(
        config_from_dict(ModelConfig, {**get_model_preset("gpt2-tiny"), "vocab_size": V})
    )
    out = o.forward(model, batch)
    assert out["logits"].shape == (15, V)
    dense = model(x)[y != IGNORE_INDEX]
    torch.testing.assert_close(out["logits"], dense, rtol=0, atol=1e-6)


def test_a_slice_of_a_batch_recounts_its_positions():
    o, _ = setup("mlm")
    x = torch.randint(4, V, (4, T), generator=torch.Generator().manual_seed(3))
    batch = o.make_batch((x, x), step=0, micro=0)
    part = batch.rows(slice(1, 3))
    assert torch.equal(part.predict, head_positions(part.targets))
    assert part.n_predicted == part.n_targets == int((part.targets != IGNORE_INDEX).sum())


def test_dense_objectives_leave_the_head_everywhere():
    o = build_objective("clm", ObjectiveConfig(fused_loss="off"), V, T, seed=0)
    x = torch.randint(4, V, (2, T))
    batch = o.make_batch((x, x), step=0, micro=0)
    assert not o.sparse_head and batch.predict is None and batch.n_predicted == x.numel()
