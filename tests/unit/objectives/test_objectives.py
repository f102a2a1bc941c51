"""Objectives: batch construction (masking rates, spans, sentence pairs), exact loss sums,
loss options, determinism of dynamic masks, and architecture checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from llmtrain.config.core import config_from_dict
from llmtrain.errors import ConfigError
from llmtrain.models import ModelConfig, build_model
from llmtrain.objectives import IGNORE_INDEX, ObjectiveConfig, build_objective, token_loss
from llmtrain.objectives.config import check_objective
from llmtrain.objectives.span import span_lengths
from tests.unit.objectives.counting import counting_windows, train_on_counting

V = 300


def obj(name, **kw):
    return build_objective(name, ObjectiveConfig(**kw), V, 64, seed=1)


def windows(B=8, T=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(4, V, (B, T + 1), generator=g)
    return x[:, :-1], x[:, 1:]


def test_mlm_masks_15_percent_with_80_10_10_and_never_specials():
    x, y = windows(B=64)
    x[:, ::16] = 3  # EOS separators must never be selected
    o = obj("mlm")
    b = o.make_batch((x, y), step=0, micro=0)
    inp, tgt = b.inputs, b.targets
    sel = tgt != IGNORE_INDEX
    assert not sel[x == 3].any()
    rate = sel.float().sum() / (x >= 4).sum()
    assert 0.13 < rate < 0.17
    masked = (inp[sel] == o.mask_id).float().mean()
    kept = (inp[sel] == x[sel]).float().mean()
    assert 0.76 < masked < 0.84 and 0.07 < kept < 0.13
    assert torch.equal(inp[~sel], x[~sel]) and torch.equal(tgt[sel], x[sel])
    assert b.n_targets == int(sel.sum())


def test_dynamic_masking_is_fresh_per_step_and_reproducible():
    x, y = windows()
    o = obj("mlm")
    a, b = o.make_batch((x, y), step=0, micro=0), o.make_batch((x, y), step=1, micro=0)
    assert not torch.equal(a.targets, b.targets)
    assert torch.equal(a.targets, o.make_batch((x, y), step=0, micro=0).targets)


def test_whole_word_masking_selects_whole_words():
    x, y = windows(B=16)
    word_start = torch.zeros(V, dtype=torch.bool)
    word_start[::3] = True  # a word = a start token followed by non-start tokens
    word_start[:4] = True
    o = obj("mlm")
    o.word_start = word_start
    tgt = o.make_batch((x, y), step=0, micro=0).targets
    sel = tgt != IGNORE_INDEX
    for b in range(x.size(0)):
        for t in range(1, x.size(1)):
            if not word_start[x[b, t]]:  # continuation: selected iff its word start is
                assert sel[b, t] == sel[b, t - 1]


def test_span_corruption_lengths_sentinels_and_reconstruction():
    x, y = windows(B=4)
    o = obj("span")
    noise, spans, n_in, n_tgt = span_lengths(64, 0.15, 3.0)
    assert (noise, spans) == (10, 3)
    b = o.make_batch((x, y), step=0, micro=0)
    src, tgt = b.inputs, b.targets
    assert src.shape == (4, n_in) and tgt.shape == (4, n_tgt)
    assert torch.equal(b.decoder_inputs[:, 1:], tgt[:, :-1])
    for row in range(4):  # fill the sentinels back in: the original window comes back
        s, t = src[row, :-1].tolist(), tgt[row, :-1].tolist()
        spans_of, cur = {}, None
        for tok in t:
            if tok > V:
                cur = tok
                spans_of[cur] = []
            else:
                spans_of[cur].append(tok)
        rebuilt = [tok for u in s for tok in (spans_of[u] if u > V else [u])]
        assert rebuilt == x[row].tolist()
        assert sorted(spans_of) == [o.sentinel(i) for i in range(spans)]
    assert o.extra_vocab == 1 + spans


@pytest.mark.parametrize("name", ["sop", "nsp"])
def test_sentence_pairs_and_labels(name):
    x, y = windows(B=32)
    b = obj(name).make_batch((x, y), step=0, micro=0)
    label, tt = b.labels, b.token_type
    assert 8 < int(label.sum()) < 24  # about half positive
    t, inp = b.targets, b.inputs
    pair = torch.where(t >= 0, t, inp)  # the pair before masking
    assert pair.shape == x.shape and pair[:, 0].eq(2).all() and pair[:, -1].eq(3).all()
    text = x[:, :-3]  # the window less room for CLS and two SEPs
    for i in range(32):
        sep = int((pair[i] == 3).nonzero()[0])  # the first SEP ends segment 0
        assert tt[i, : sep + 1].eq(0).all() and tt[i, sep + 1 :].eq(1).all()
        first, second = pair[i, 1:sep], pair[i, sep + 1 : -1]
        assert first.numel() > 0 and second.numel() > 0
        if name == "sop":  # two consecutive spans of the window, swapped when label is 1
            kept = torch.equal(torch.cat([first, second]), text[i])
            swapped = torch.equal(torch.cat([second, first]), text[i])
            assert kept != bool(label[i]) and swapped == bool(label[i])
        else:  # B follows A, or is another window's second half
            assert torch.equal(first, text[i, :30])
            src = text[i] if not label[i] else text[(i - 1) % 32]
            assert torch.equal(second, src[30:])


def test_sop_head_learns_an_order_it_can_see():
    """On windows that count upwards, the order of the two spans is visible at the junction:
    a working SOP pipeline (pair layout, labels, pooler, loss) learns it well above chance."""
    V_syn, T = 120, 32
    o = build_objective("sop", ObjectiveConfig(), V_syn, T, seed=0)
    fields = {"architecture": "encoder", "sentence_head": True, "type_vocab_size": 2}
    fields |= {"vocab_size": V_syn + o.extra_vocab, "block_size": T, "n_layer": 2, "n_head": 2}
    torch.manual_seed(0)
    model = build_model(config_from_dict(ModelConfig, {**fields, "n_embd": 32}))
    counting = counting_windows(V_syn, T)
    train_on_counting(o, model, counting, lr=1e-3)
    x = counting(256)
    b = o.make_batch((x, x), step=-1, micro=0)
    with torch.no_grad():
        _, m = o.loss(o.forward(model, b), b)
    assert int(m["sentence_correct"]) / 256 > 0.9


def test_prefix_lm_ignores_prefix_targets():
    x, y = windows(B=4)
    b = obj("prefix_lm").make_batch((x, y), step=0, micro=0)
    p, tgt = b.prefix_len, b.targets
    for i in range(4):
        assert (tgt[i, : p[i] - 1] == IGNORE_INDEX).all()
        assert torch.equal(tgt[i, p[i] - 1 :], y[i, p[i] - 1 :])


def test_token_loss_options():
    torch.manual_seed(0)
    logits, tgt = torch.randn(2, 5, 11), torch.randint(0, 11, (2, 5))
    tgt[0, 0] = IGNORE_INDEX
    keep = tgt != IGNORE_INDEX
    ref = F.cross_entropy(logits[keep], tgt[keep], reduction="sum")
    torch.testing.assert_close(token_loss(logits, tgt), ref)
    torch.testing.assert_close(token_loss(logits, tgt, weights=torch.ones(2, 5)), ref)
    ls = token_loss(logits, tgt, label_smoothing=0.1)
    man = F.cross_entropy(logits[keep], tgt[keep], label_smoothing=0.1, reduction="sum")
    torch.testing.assert_close(ls, man)
    z = token_loss(logits, tgt, z_loss=1e-2) - ref
    torch.testing.assert_close(z, 1e-2 * torch.logsumexp(logits[keep], -1).square().sum())
    w = torch.zeros(2, 5)
    w[1] = 2.0
    ce = F.cross_entropy(logits[1], tgt[1], reduction="sum")
    torch.testing.assert_close(token_loss(logits, tgt, weights=w), 2 * ce)


@pytest.mark.parametrize(
    ("name", "arch", "match"),
    [
        ("mlm", "decoder", "bidirectional"),
        ("clm", "encoder", "next token"),
        ("span", "decoder", "encoder_decoder"),
        ("sop", "encoder", "sentence_head"),
    ],
)
def test_objective_must_fit_the_architecture(name, arch, match):
    cfg = ModelConfig(architecture=arch)
    with pytest.raises(ConfigError, match=match):
        check_objective(name, cfg)


@pytest.mark.parametrize(
    ("name", "model_kw"),
    [
        ("clm", {"n_experts": 2, "moe_top_k": 1}),
        ("prefix_lm", {}),
        ("mlm", {"architecture": "encoder"}),
        ("sop", {"architecture": "encoder", "sentence_head": True, "type_vocab_size": 2}),
        ("nsp", {"architecture": "encoder", "sentence_head": True}),
        ("span", {"architecture": "encoder_decoder", "pos_embedding": "relative"}),
    ],
)
def test_loss_sum_is_exact_under_any_micro_batch_split(name, model_kw):
    o = obj(name)
    base = {"vocab_size": V + o.extra_vocab, "block_size": 64, "n_layer": 2, "n_head": 2}
    torch.manual_seed(0)
    model = build_model(config_from_dict(ModelConfig, {**base, "n_embd": 32, **model_kw}))
    x, y = windows(B=4)
    whole = o.make_batch((x, y), step=0, micro=0)
    loss_sum, _ = o.loss(o.forward(model, whole), whole)
    mean = loss_sum / whole.n_targets
    assert 0 < float(mean.detach()) < 20
    # the same batch in two halves: sums add up to the whole
    halves = 0.0
    for sl in (slice(0, 2), slice(2, 4)):
        part = whole.rows(sl)
        halves += float(o.loss(o.forward(model, part), part)[0].detach())
    if name not in ("clm",):  # MoE aux is per micro-batch, the others are exact sums
        assert halves == pytest.approx(float(loss_sum.detach()), rel=1e-5)
