"""`evaluate` / `target_unigram`: each objective's loss and task metrics on fixed windows, the
unigram baseline on the same targets, eval mode restored."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmtrain.data.loader import TokenWindows
from llmtrain.eval import evaluate, target_unigram
from llmtrain.models import ModelConfig, build_model
from llmtrain.objectives import IGNORE_INDEX, ObjectiveConfig, build_objective

V, T = 40, 16
ARCH = {
    "clm": {},
    "mlm": {"architecture": "encoder"},
    "sop": {"architecture": "encoder", "sentence_head": True, "type_vocab_size": 2},
    "electra": {"architecture": "encoder", "generator_scale": 0.5},
    "span": {"architecture": "encoder_decoder", "pos_embedding": "relative"},
}


def windows(seed: int = 0) -> TokenWindows:
    rng = np.random.default_rng(seed)
    return TokenWindows([rng.integers(4, V, 40 * T).astype(np.uint16)], T)


def setup(name: str):
    obj = build_objective(name, ObjectiveConfig(), V, T, seed=0)
    cfg = ModelConfig(
        n_layer=1, n_head=2, n_embd=16, block_size=T, vocab_size=V + obj.extra_vocab, **ARCH[name]
    )
    torch.manual_seed(0)
    return build_model(cfg), obj


@pytest.mark.parametrize("name", list(ARCH))
def test_evaluate_every_objective(name):
    model, obj = setup(name)
    w = windows()
    model.train()
    res = evaluate(model, obj, w, indices=list(range(8)), micro_batch_size=4)
    assert model.training  # restored
    assert res["loss"] > 0 and 0 <= res["token_acc"] <= 1 and res["targets"] > 0
    assert res["token_nll"] == pytest.approx(np.log(V + obj.extra_vocab), abs=0.5)  # ~uniform
    assert ("ppl" in res) == (name == "clm")  # perplexity only for next-token objectives
    if name == "clm":
        assert res["token_nll"] == pytest.approx(res["loss"])  # every next token is scored
    assert ("sentence_acc" in res) == (name == "sop")
    assert ("rtd_auc" in res) == (name == "electra")
    if name == "electra":
        assert 0 <= res["rtd_auc"] <= 1 and 0 < res["replaced_frac"] < 1
    again = evaluate(model, obj, w, indices=list(range(8)), micro_batch_size=4)
    assert again == res  # fixed masks: deterministic


def test_unigram_baseline_scores_the_same_targets():
    model, obj = setup("mlm")
    w = windows()
    counts = target_unigram(obj, w, list(range(20)), 4)
    assert counts.sum() > 0 and counts[:4].sum() == 0  # specials are never masked
    res = evaluate(model, obj, w, indices=list(range(8)), micro_batch_size=4, unigram=counts)
    assert 0 <= res["unigram_acc"] <= 1
    assert res["unigram_nll"] < np.log(V + 1) + 0.1  # frequencies beat (or tie) uniform
    res2 = evaluate(
        model, obj, w, indices=list(range(8)), micro_batch_size=4, unigram=counts, repeats=2
    )
    assert res2["targets"] > res["targets"]  # a second mask set scores new targets


def test_unigram_of_a_constant_corpus_is_perfect():
    model, obj = setup("clm")
    w = TokenWindows([np.full(10 * T, 7, dtype=np.uint16)], T)
    counts = target_unigram(obj, w, list(range(5)), 4)
    res = evaluate(model, obj, w, indices=list(range(5)), micro_batch_size=4, unigram=counts)
    n = 5 * T  # add-one smoothing: p(7) = (n + 1) / (n + V)
    assert res["unigram_acc"] == 1.0
    assert res["unigram_nll"] == pytest.approx(-np.log((n + 1) / (n + V)))


def test_span_scores_span_tokens_not_sentinels():
    _, obj = setup("span")
    batch = obj.make_batch(windows().batch([0, 1]), step=-1, micro=0)
    tgt = obj.scored_targets(batch)
    kept = tgt[tgt != IGNORE_INDEX]
    assert (kept < V).all() and (tgt[:, -1] == IGNORE_INDEX).all()
    # every corrupted token is scored: noise tokens per row = targets - spans - EOS
    assert kept.numel() == int((batch.targets < V).sum()) - 2  # minus EOS (id 3)
