"""Multiple-choice scoring: lm-eval's pair encoding, log-likelihoods equal to a direct
per-choice computation whatever the batching, seeded few-shot contexts, the three
normalisations (chars vs bytes on Chinese), chance-centred scores, encoders refused."""

from __future__ import annotations

import math

import pytest
import torch

from llmtrain.errors import ConfigError
from llmtrain.eval.multiple_choice import (
    centered,
    choice_loglikelihoods,
    encode_pair,
    fewshot_context,
    item_pairs,
    loglikelihoods,
    predictions,
    score_task,
    summary,
)
from llmtrain.eval.tasks import MCItem, Task
from llmtrain.models import ModelConfig, build_model
from llmtrain.tokenizer import ByteTokenizer, train_tokenizer

TEXTS = ["the cat sat on the mat. 猫坐在垫子上。"] * 20


@pytest.fixture(scope="module")
def bpe():
    return train_tokenizer("bpe", TEXTS, 300)


def tiny(vocab: int, block: int = 32, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=block, vocab_size=vocab, **kw)
    return build_model(cfg).eval()


@pytest.mark.parametrize(
    "context, continuation",
    [
        ("the cat", " sat"),
        ("the cat ", "sat"),
        ("猫坐在", "垫子上"),
        ("Question: x\nAnswer:", " mat"),
    ],
)
def test_encode_pair_is_lm_evals(bpe, context, continuation):
    lm_eval_model = pytest.importorskip("lm_eval.api.model")

    class Fake:  # the two attributes TemplateLM._encode_pair reads
        backend = "causal"

        @staticmethod
        def tok_encode(text: str) -> list[int]:
            return bpe.encode(text)

    theirs = lm_eval_model.TemplateLM._encode_pair(Fake(), context, continuation)
    assert encode_pair(bpe, context, continuation) == theirs


def test_empty_context_starts_from_bos():
    tok = ByteTokenizer()
    ctx, cont = encode_pair(tok, "", "ab")
    assert ctx == [tok.bos_id] and cont == tok.encode("ab")


@torch.no_grad()
def direct_ll(model, ctx: list[int], cont: list[int]) -> float:
    """log p(cont | ctx) one token at a time, each token seeing the tokens since the start
    of lm-eval's one window: the last block_size + 1 tokens of context + continuation."""
    full = ctx + cont
    start = max(0, len(full) - model.cfg.block_size - 1)
    total = 0.0
    for i, tok in enumerate(cont):
        seq = full[start : len(ctx) + i]
        logp = torch.log_softmax(model(torch.tensor([seq]))[0, -1].float(), -1)
        total += float(logp[tok])
    return total


def test_loglikelihoods_match_direct_computation_in_any_batch():
    tok = ByteTokenizer()
    model = tiny(tok.vocab_size, block=24)
    pairs = [
        encode_pair(tok, c, x)
        for c, x in [("hello", " world"), ("a" * 40, " long context"), ("短", "中文"), ("x", " y")]
    ]
    want = [direct_ll(model, c, x) for c, x in pairs]
    for bs in (1, 3, 8):
        got = loglikelihoods(model, pairs, batch_size=bs, quiet=True)
        assert got == pytest.approx(want, abs=1e-4)
    assert not model.training


def test_fewshot_is_seeded_and_excludes_the_question():
    items = [MCItem(f"Q{i}:", ("a", "b"), i % 2) for i in range(10)]
    ctx = fewshot_context(items, 3, 2, seed=1)
    assert ctx == fewshot_context(items, 3, 2, seed=1)
    parts = ctx.split("\n\n")
    assert len(parts) == 3 and parts[-1] == "Q3:" and "Q3: " not in parts[:-1]
    assert all(p in {f"Q{i}: {'ab'[i % 2]}" for i in range(10)} for p in parts[:-1])
    seeds = {fewshot_context(items, 3, 2, seed=s) for s in range(8)}
    assert len(seeds) > 1
    with pytest.raises(ConfigError, match="needs more than"):
        fewshot_context(items, 0, 10, seed=1)


def test_char_and_byte_normalisation_on_chinese():
    # pure CJK choices: bytes = 3 x chars, so both rules pick the same
    zh = MCItem("问：", ("北京", "上海市"), 0, "")
    p = predictions(zh, [-4.0, -5.0])
    assert p["acc_norm"] == p["acc_bytes"] == 1 and p["acc"] == 0
    # mixed: the digits weigh 1 byte each, the hanzi 3; the two rules disagree
    mixed = MCItem("问：", ("2024年", "明年"), 0, "")
    p = predictions(mixed, [-10.0, -7.0])
    assert (p["acc"], p["acc_norm"], p["acc_bytes"]) == (1, 0, 1)


def test_scores_chance_and_centering():
    tok = ByteTokenizer()
    model = tiny(tok.vocab_size)
    items = [MCItem("x", ("a", "b"), 0), MCItem("y", ("a", "b", "c", "d"), 3, "")]
    task = Task("t", None, "mc", items)
    res = score_task(model, tok, task, quiet=True)
    assert res["n"] == 2 and res["chance"] == pytest.approx((1 / 2 + 1 / 4) / 2)
    assert [len(it["lls"]) for it in res["items"]] == [2, 4]
    assert res["centered"] == pytest.approx(centered(res["acc"], res["chance"]))
    assert centered(1.0, 0.25) == 1 and centered(0.25, 0.25) == 0
    assert math.isclose(
        summary([res, {**res, "centered": 1.0}])["centered"], (res["centered"] + 1) / 2
    )
    pairs = item_pairs(tok, items, 0, 0)
    assert [len(c) for _, c in pairs[:2]] == [2, 2]  # " a", " b": the delimiter is scored


@pytest.mark.parametrize("arch", ["encoder", "encoder_decoder"])
def test_encoders_are_refused_with_the_reason(arch):
    kw = (
        {"architecture": arch, "pos_embedding": "relative"}
        if arch != "encoder"
        else {"architecture": arch}
    )
    model = tiny(64, **kw)
    task = Task("t", None, "mc", [MCItem("x", ("a", "b"), 0)])
    with pytest.raises(ConfigError, match="not scored"):
        score_task(model, ByteTokenizer(), task, quiet=True)


@pytest.mark.parametrize("pos", ["learned", "rope", "alibi"])
def test_shared_prefix_reuse_equals_the_padded_path(pos):
    tok = ByteTokenizer()
    model = tiny(tok.vocab_size, block=24, pos_embedding=pos)
    groups = [
        [encode_pair(tok, "the cat", x) for x in (" sat", " ran far", "!")],  # fits: cached
        [encode_pair(tok, "语言模型", x) for x in ("学习", "很")],
        [encode_pair(tok, "a" * 30, x) for x in (" b", " cc")],  # too long: padded path
    ]
    reuse = choice_loglikelihoods(model, groups, quiet=True, prefix_reuse=True)
    padded = choice_loglikelihoods(model, groups, quiet=True, prefix_reuse=False)
    assert reuse == pytest.approx(padded, abs=1e-4)
    flat = [p for g in groups for p in g]
    assert reuse == pytest.approx([direct_ll(model, c, x) for c, x in flat], abs=1e-4)
