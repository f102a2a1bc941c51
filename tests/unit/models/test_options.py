"""Orthogonal model options: every family builds, initialises every tensor, trains (gradients
reach every parameter) and honours its attention pattern; bad combinations are config errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode

from llmtrain.config.core import config_from_dict
from llmtrain.errors import ConfigError
from llmtrain.models import ModelConfig, build_model
from llmtrain.models import moe as moe_module
from llmtrain.models.build import build_model as build
from llmtrain.models.decoder import Transformer
from llmtrain.models.encoder_decoder import EncoderDecoder
from llmtrain.models.moe import moe_aux_loss, tokens_per_expert
from llmtrain.models.positions import alibi_slopes, t5_bucket
from tests.unit.models.init_check import assert_init_covers_every_tensor

V, T = 97, 16

FAMILIES = {
    "gpt2": {},
    "llama_qknorm": {
        **{"pos_embedding": "rope", "norm": "rmsnorm", "mlp": "swiglu", "bias": False},
        **{"n_kv_head": 1, "qk_norm": True, "tie_embeddings": False},
    },
    "alibi_relu2": {"pos_embedding": "alibi", "mlp": "relu2"},
    "sinusoidal_relu_post": {"pos_embedding": "sinusoidal", "mlp": "relu", "norm_position": "post"},
    "bert": {
        **{"architecture": "encoder", "norm_position": "post", "embedding_norm": True},
        **{"type_vocab_size": 2, "head_transform": True, "head_bias": True, "sentence_head": True},
    },
    "encoder_relative_geglu": {
        **{"architecture": "encoder", "pos_embedding": "relative", "mlp": "geglu"},
    },
    "mixtral": {
        **{"pos_embedding": "rope", "norm": "rmsnorm", "mlp": "swiglu", "bias": False},
        **{"n_experts": 4, "moe_top_k": 2, "moe_importance_coef": 0.1, "moe_load_coef": 0.1},
    },
    "t5": {
        **{"architecture": "encoder_decoder", "pos_embedding": "relative", "norm": "rmsnorm"},
        **{"bias": False, "mlp": "geglu_tanh", "attn_scale": 1.0, "n_decoder_layer": 1},
    },
}


def tiny(**kw) -> ModelConfig:
    base = {"vocab_size": V, "block_size": 32, "n_layer": 2, "n_head": 4, "n_embd": 32}
    return config_from_dict(ModelConfig, {**base, **kw})


def run(model, idx):
    if isinstance(model, EncoderDecoder):
        return model(idx, idx[:, : T // 2])
    return model(idx)


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("scheme", ["normal", "gpt2", "small"])
def test_init_writes_every_tensor_of_every_family(family, scheme):
    cfg = tiny(**FAMILIES[family])
    model_cls = EncoderDecoder if cfg.architecture == "encoder_decoder" else Transformer
    assert_init_covers_every_tensor(model_cls, cfg, scheme)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_forwards_and_every_parameter_gets_a_gradient(family):
    torch.manual_seed(0)
    model = build_model(tiny(**FAMILIES[family]))
    idx = torch.randint(0, V, (3, T))
    logits = run(model, idx)
    assert logits.shape[0] == 3 and logits.shape[-1] == V and torch.isfinite(logits).all()
    loss = logits.float().pow(2).mean()
    if getattr(model, "pooler", None) is not None:
        loss = loss + model.sentence_logits(model.forward_hidden(idx)).sum()
    if (aux := moe_aux_loss(model)) is not None:
        loss = loss + aux
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


def _changes_past(model) -> bool:
    idx = torch.randint(0, V, (2, T))
    changed = idx.clone()
    changed[:, 10:] = (changed[:, 10:] + 1) % V
    a, b = model(idx), model(changed)
    return bool((a[:, :10] - b[:, :10]).abs().max() > 1e-5)


@pytest.mark.parametrize("pos", ["learned", "sinusoidal", "alibi", "relative"])
def test_decoder_is_causal_and_encoder_is_bidirectional(pos):
    torch.manual_seed(0)
    assert not _changes_past(build_model(tiny(pos_embedding=pos)).eval())
    enc = build_model(tiny(pos_embedding=pos, architecture="encoder")).eval()
    assert _changes_past(enc)


def test_prefix_lm_sees_the_whole_prefix_and_nothing_after_it():
    torch.manual_seed(0)
    model = build_model(tiny()).eval()
    idx = torch.randint(0, V, (2, T))
    prefix = torch.tensor([6, 6])
    changed = idx.clone()
    changed[:, 5] = (changed[:, 5] + 1) % V  # inside the prefix: every position may see it
    a, b = model(idx, prefix_len=prefix), model(changed, prefix_len=prefix)
    assert (a[:, 0] - b[:, 0]).abs().max() > 1e-5
    later = idx.clone()
    later[:, 10:] = (later[:, 10:] + 1) % V  # after the prefix: still causal
    c = model(later, prefix_len=prefix)
    torch.testing.assert_close(a[:, :10], c[:, :10], rtol=0, atol=1e-6)
    # a zero-length prefix is the plain causal model
    torch.testing.assert_close(model(idx, prefix_len=torch.tensor([0, 0])), model(idx))


def test_alibi_slopes_are_the_published_ones():
    torch.testing.assert_close(alibi_slopes(8), torch.tensor([2.0**-i for i in range(1, 9)]))
    six = alibi_slopes(6)  # 4 base slopes + the odd slopes of 8 heads
    torch.testing.assert_close(six[:4], torch.tensor([2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8]))
    torch.testing.assert_close(six[4:], torch.tensor([2.0**-1, 2.0**-3]))


def test_t5_buckets_match_the_reference_values():
    rel = torch.tensor([-200, -20, -3, 0, 3, 20, 200])
    # from HF T5Attention._relative_position_bucket(bidirectional, 32 buckets, 128)
    assert t5_bucket(rel, True, 32, 128).tolist() == [15, 10, 3, 0, 19, 26, 31]
    assert t5_bucket(rel, False, 32, 128).tolist() == [31, 17, 3, 0, 0, 0, 0]


def test_moe_dropless_equals_the_dense_mixture_and_counts_tokens():
    torch.manual_seed(0)
    cfg = tiny(n_experts=4, moe_top_k=2, mlp="gelu")
    model = build_model(cfg)
    moe = model.blocks[0].mlp
    x = torch.randn(2, 8, cfg.n_embd)
    y = moe(x)
    probs = moe.router(x.reshape(-1, cfg.n_embd)).softmax(-1)
    gates, chosen = probs.topk(2, dim=-1)
    gates = gates / gates.sum(-1, keepdim=True)
    ref = torch.zeros(16, cfg.n_embd)
    for n in range(16):
        for j in range(2):
            e = int(chosen[n, j])
            h = torch.nn.functional.gelu(x.reshape(-1, cfg.n_embd)[n] @ moe.w_in[e].T)
            ref[n] += gates[n, j] * (h @ moe.w_out[e].T)
    torch.testing.assert_close(y.reshape(-1, cfg.n_embd), ref, rtol=1e-5, atol=1e-5)
    assert int(moe.tokens_per_expert.sum()) == 16 * 2
    model(torch.randint(0, V, (2, 8)))
    counts = tokens_per_expert(model)
    assert len(counts) == 2 and all(sum(c) == 16 * 2 for c in counts)


def test_moe_capacity_drops_overflow_tokens():
    torch.manual_seed(0)
    cfg = tiny(n_experts=4, moe_top_k=1, moe_capacity_factor=0.5)
    moe = build_model(cfg).blocks[0].mlp
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.weight[0] = 1.0  # push every token to expert 0
    x = torch.rand(1, 16, cfg.n_embd) + 0.1
    y = moe(x)[0]
    cap = 2  # ceil(0.5 * 16 * 1 / 4)
    assert (y.abs().sum(-1) > 0).sum() == cap  # the rest pass through the residual only
    assert int(moe.tokens_per_expert[0]) == 16


def _moe_reference(moe, x, cap: int) -> torch.Tensor:
    """Each expert in turn: the tokens routed to it, the first `cap` of them by (rank, token)
    when over capacity (0: all), their MLP output weighted by the gate, summed per token."""
    C = x.size(-1)
    xf = x.reshape(-1, C)
    probs = moe.router(xf).float().softmax(-1)
    gates, chosen = probs.topk(moe.top_k, dim=-1)
    gates = gates / gates.sum(-1, keepdim=True)
    out = torch.zeros_like(xf)
    for e in range(moe.n_experts):
        tok, rank = torch.where(chosen == e)
        if cap and tok.numel() > cap:
            keep = (rank * xf.size(0) + tok).argsort()[:cap]
            tok, rank = tok[keep], rank[keep]
        h = torch.nn.functional.silu(xf[tok] @ moe.w_in[e][: moe.cfg.ffn_dim].T)
        h = h * (xf[tok] @ moe.w_in[e][moe.cfg.ffn_dim :].T)
        out.index_add_(0, tok, gates[tok, rank, None] * (h @ moe.w_out[e].T))
    return out.view_as(x)


@pytest.mark.parametrize("factor", [0.0, 0.5, 1.0, 4.0])  # dropless; overflow; a little; none
def test_moe_routes_like_a_per_expert_loop_with_or_without_capacity(factor):
    torch.manual_seed(0)
    cfg = tiny(n_experts=4, moe_top_k=2, mlp="swiglu", moe_capacity_factor=factor)
    moe = build_model(cfg).blocks[0].mlp
    with torch.no_grad():
        moe.router.weight[0] += 0.5  # an unbalanced router: expert 0 over its capacity
    x = torch.randn(2, 24, cfg.n_embd)
    cap = math.ceil(factor * 48 * 2 / 4) if factor else 0
    ref_x, got_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref = _moe_reference(moe, ref_x, cap)
    (ref * torch.linspace(-1, 1, cfg.n_embd)).sum().backward()
    ref_grads = [ref_x.grad] + [p.grad.clone() for p in (moe.w_in, moe.w_out, moe.router.weight)]
    moe.zero_grad()
    got = moe(got_x)
    (got * torch.linspace(-1, 1, cfg.n_embd)).sum().backward()
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    got_grads = [got_x.grad] + [p.grad for p in (moe.w_in, moe.w_out, moe.router.weight)]
    for g, r in zip(got_grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-6)
    if factor == 0.5:
        assert int(moe.tokens_per_expert[0]) > cap  # the case it tests: some were dropped
    assert int(moe.tokens_per_expert.sum()) == 48 * 2
    for autocast in (False, True):  # no tokens at all: an empty output, every path
        with torch.autocast("cpu", torch.bfloat16, enabled=autocast):
            assert moe(x[:, :0]).shape == (2, 0, cfg.n_embd)


@pytest.mark.parametrize("mlp", ["swiglu", "gelu"])
def test_dropless_moe_as_one_grouped_gemm_equals_a_matmul_per_expert(mlp, monkeypatch):
    """Under bf16 autocast on a CPU, dropless MoE runs `torch._grouped_mm` over groups
    aligned to 16 rows (zero rows between, the last group to the buffer's end); the same
    output and gradients as the per-expert matmuls (GROUPED_MM_DEVICES emptied), with an
    expert that gets no token at all."""
    torch.manual_seed(0)
    cfg = tiny(n_experts=4, moe_top_k=2, mlp=mlp)
    moe = build_model(cfg).blocks[0].mlp
    with torch.no_grad():
        moe.router.weight[3] = -10 * moe.router.weight[3].abs().sum()  # expert 3: unused
    x = torch.rand(2, 20, cfg.n_embd)

    def run():
        xs = x.clone().requires_grad_()
        moe.zero_grad()
        with torch.autocast("cpu", torch.bfloat16):
            y = moe(xs)
        (y.float() * torch.linspace(-1, 1, cfg.n_embd)).sum().backward()
        return [y, xs.grad, *(p.grad.clone() for p in moe.parameters())]

    called = []
    real = torch._grouped_mm
    monkeypatch.setattr(torch, "_grouped_mm", lambda *a, **kw: called.append(1) or real(*a, **kw))
    grouped = run()
    assert len(called) == 2 and int(moe.tokens_per_expert[3]) == 0  # the case it tests
    monkeypatch.setattr(moe_module, "GROUPED_MM_DEVICES", set())
    loop = run()
    assert len(called) == 2
    for g, r in zip(grouped, loop, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-2, atol=1e-3)


def test_moe_with_a_capacity_reads_nothing_on_the_host():
    """Static shapes, counts kept on the device: Dynamo traces the whole forward as one graph
    (a host read — .tolist(), .item(), a data-dependent shape — would break it); dropless
    as a grouped GEMM too, and as a matmul per expert reads the row counts once per layer."""
    cfg = tiny(n_experts=4, moe_top_k=2, moe_capacity_factor=1.25)
    moe = build_model(cfg).blocks[0].mlp
    x = torch.randn(2, 16, cfg.n_embd)
    torch._dynamo.reset()
    y = torch.compile(moe, backend="eager", fullgraph=True)(x)
    torch.testing.assert_close(y, moe(x))
    dropless = build_model(tiny(n_experts=4, moe_top_k=2)).blocks[0].mlp
    host_read = (torch._dynamo.exc.Unsupported, GuardOnDataDependentSymNode)
    with pytest.raises(host_read):  # fp32: the row counts size its matmuls
        torch.compile(dropless, backend="eager", fullgraph=True)(x)
    with torch.autocast("cpu", torch.bfloat16):  # bf16 on a CPU: one grouped GEMM, no read
        y = torch.compile(dropless, backend="eager", fullgraph=True)(x)
        torch.testing.assert_close(y, dropless(x))


def test_moe_aux_loss_is_lowest_when_balanced():
    cfg = tiny(n_experts=4, moe_top_k=1, moe_z_coef=0.0)
    moe = build_model(cfg).blocks[0].mlp
    x = torch.randn(1, 64, cfg.n_embd)
    with torch.no_grad():
        moe.router.weight.zero_()
    moe(x)
    balanced = float(moe.aux_loss)  # uniform probs: E * sum(f * 1/E) = 1 * coef
    with torch.no_grad():
        moe.router.weight[0] = 5.0 * x.mean((0, 1)).sign()
    moe(x)
    assert balanced == pytest.approx(0.01, rel=1e-4) and float(moe.aux_loss) > balanced


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"n_experts": 2, "moe_top_k": 3}, "moe_top_k"),
        ({"attn_dropout": 1.5}, "attn_dropout"),
        ({"sentence_head": True}, "encoder"),
        ({"n_decoder_layer": 2}, "encoder_decoder"),
        ({"mlp": "tanh"}, "relu2"),
        ({"pos_embedding": "alibi", "architecture": "encoder_decoder"}, "relative"),
    ],
)
def test_bad_options_are_config_errors(kw, match):
    with pytest.raises(ConfigError, match=match):
        build(tiny(**kw))


def test_separate_dropouts_fall_back_to_dropout():
    cfg = tiny(dropout=0.1, attn_dropout=0.0)
    assert (cfg.drop("attn"), cfg.drop("resid"), cfg.drop("embd")) == (0.0, 0.1, 0.1)
    model = build_model(cfg).train()
    torch.manual_seed(0)
    idx = torch.randint(0, V, (2, T))
    assert not torch.equal(model(idx), model(idx))  # dropout is active in training
    model.eval()
    assert torch.equal(model(idx), model(idx))
