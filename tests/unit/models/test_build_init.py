"""Meta-device build + init_weights covers every tensor; parameter counts, FLOPs and presets."""

from __future__ import annotations

import math

import pytest
import torch

from llmtrain.config.core import config_from_dict
from llmtrain.errors import ConfigError
from llmtrain.models import (
    MODEL_PRESETS,
    ModelConfig,
    Transformer,
    build_model,
    flops_per_token,
    forward_flops_per_token,
    get_model_preset,
    num_params,
)
from llmtrain.models.encoder_decoder import EncoderDecoder
from tests.unit.models.init_check import assert_init_covers_every_tensor

STYLES = {
    "gpt2": {},
    "llama": {
        "pos_embedding": "rope",
        "norm": "rmsnorm",
        "mlp": "swiglu",
        "n_kv_head": 2,
        "bias": False,
        "tie_embeddings": False,
    },
}


def cfg_of(**kw) -> ModelConfig:
    base = {"vocab_size": 64, "block_size": 16, "n_layer": 2, "n_head": 4, "n_embd": 32}
    return config_from_dict(ModelConfig, {**base, **kw})


@pytest.mark.parametrize("style", list(STYLES))
@pytest.mark.parametrize("scheme", ["normal", "gpt2"])
def test_init_writes_every_parameter_and_buffer(style, scheme):
    assert_init_covers_every_tensor(Transformer, cfg_of(**STYLES[style]), scheme)


def test_init_statistics_follow_the_scheme():
    torch.manual_seed(0)
    cfg = cfg_of(n_embd=64, n_layer=2)
    model = build_model(cfg, init_scheme="gpt2")
    assert model.blocks[0].attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.1)
    resid = 0.02 / math.sqrt(2 * cfg.n_layer)
    assert model.blocks[0].mlp.proj.weight.std().item() == pytest.approx(resid, rel=0.1)
    assert torch.all(model.blocks[0].ln_1.weight == 1) and torch.all(model.blocks[0].ln_1.bias == 0)
    assert torch.all(model.blocks[0].attn.qkv.bias == 0)
    flat = build_model(cfg, init_scheme="normal")
    assert flat.blocks[0].mlp.proj.weight.std().item() == pytest.approx(0.02, rel=0.1)


def test_unknown_init_scheme_is_a_config_error():
    with pytest.raises(ConfigError, match="gpt2"):
        build_model(cfg_of(), init_scheme="xavier")


def test_build_is_reproducible_under_a_seed():
    torch.manual_seed(3)
    a = build_model(cfg_of())
    torch.manual_seed(3)
    b = build_model(cfg_of())
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


def test_param_count_of_gpt2_tiny_matches_formula():
    cfg = ModelConfig(**get_model_preset("gpt2-tiny"), vocab_size=256)
    model = build_model(cfg)
    v, c, t, L = 256, cfg.n_embd, cfg.block_size, cfg.n_layer
    per_layer = (
        2 * c  # ln_1 weight + bias
        + c * 3 * c
        + 3 * c  # qkv
        + c * c
        + c  # attention output projection
        + 2 * c  # ln_2
        + c * 4 * c
        + 4 * c  # mlp fc
        + 4 * c * c
        + c  # mlp proj
    )
    total = v * c + t * c + L * per_layer + 2 * c  # wte (tied head) + wpe + blocks + ln_f
    assert num_params(model, non_embedding=False) == total
    assert num_params(model, non_embedding=True) == total - t * c


def test_untied_head_counts_once_and_embedding_is_excluded():
    cfg = cfg_of(**STYLES["llama"])
    model = build_model(cfg)
    every = sum(p.numel() for p in model.parameters())
    assert num_params(model, non_embedding=False) == every
    assert num_params(model, non_embedding=True) == every - cfg.vocab_size * cfg.n_embd


def test_flops_per_token_gpt2_124m_known_value():
    cfg = ModelConfig(**get_model_preset("gpt2-124m"))
    c, L, v, t = 768, 12, 50304, 1024
    n = L * (3 * c * c + c * c + 8 * c * c) + v * c  # qkv, proj, mlp (2 x 4c^2), lm head
    assert n == 123_568_128
    assert flops_per_token(cfg) == 6 * n + 12 * L * c * t == 854_654_976
    assert flops_per_token(cfg, seq_len=256) == 6 * n + 12 * L * c * 256
    assert forward_flops_per_token(cfg) == pytest.approx(flops_per_token(cfg) / 3)


def test_flops_count_gqa_and_swiglu_matrices():
    cfg = cfg_of(**STYLES["llama"])
    c, hs, f = 32, 8, cfg.ffn_dim
    n = 2 * (c * (4 + 2 * 2) * hs + c * c + 3 * c * f) + 64 * c
    assert flops_per_token(cfg, seq_len=16) == 6 * n + 12 * 2 * c * 16


@pytest.mark.parametrize("name", list(MODEL_PRESETS))
def test_every_preset_is_a_valid_config(name):
    fields = get_model_preset(name)
    if not fields.get("vocab_size"):
        fields["vocab_size"] = 128  # 0 = "from the tokenizer"
    cfg = config_from_dict(ModelConfig, fields)
    with torch.device("meta"):  # shapes only: llama-1b would need GBs of memory
        model = (EncoderDecoder if cfg.architecture == "encoder_decoder" else Transformer)(cfg)
    assert num_params(model) > 0


def test_preset_sizes_are_the_published_ones():
    def count(name):
        with torch.device("meta"):
            return num_params(
                Transformer(ModelConfig(**get_model_preset(name))), non_embedding=False
            )

    assert count("gpt2-124m") == pytest.approx(124.5e6, rel=0.01)
    assert count("gpt2-350m") == pytest.approx(355e6, rel=0.01)
    assert count("llama-1b") == pytest.approx(1.236e9, rel=0.01)


def test_unknown_preset_lists_valid_names():
    with pytest.raises(ConfigError, match="gpt2-tiny"):
        get_model_preset("gpt5")
    a = get_model_preset("gpt2-tiny")
    a["n_layer"] = 99
    assert get_model_preset("gpt2-tiny")["n_layer"] == 2  # callers get a copy


def t5_tiny(**kw) -> ModelConfig:
    fields = {**get_model_preset("t5-tiny"), "vocab_size": 256, "block_size": 16, **kw}
    return config_from_dict(ModelConfig, fields)


def test_t5_scheme_is_t5_variance_scaling():
    """Embeddings N(0, 1); matrices N(0, 1/fan_in); queries also 1/sqrt(hs) (unscaled
    attention); relative biases and the head N(0, 1/d) (Mesh TF / t5x)."""
    torch.manual_seed(0)
    cfg = t5_tiny(n_embd=128, n_head=4)
    assert cfg.init_scheme == "t5"
    assert_init_covers_every_tensor(EncoderDecoder, cfg, "t5")
    model = build_model(cfg)
    d, hs, ffn = 128, 32, cfg.ffn_dim
    qkv = model.encoder[0].attn.qkv.weight  # (3·nh·hs, d): q rows first
    expected = {
        "wte": (model.wte.weight, 1.0),
        "q": (qkv[: 4 * hs], (d * hs) ** -0.5),
        "kv": (qkv[4 * hs :], d**-0.5),
        "o": (model.encoder[0].attn.proj.weight, (4 * hs) ** -0.5),
        "cross q": (model.decoder[0].xattn.q.weight, (d * hs) ** -0.5),
        "cross kv": (model.decoder[0].xattn.kv.weight, d**-0.5),
        "wi": (model.decoder[1].mlp.fc.weight, d**-0.5),
        "wo": (model.decoder[1].mlp.proj.weight, ffn**-0.5),
        "rel": (model.enc_rel.embedding.weight, d**-0.5),
        "head": (model.lm_head.weight, d**-0.5),
    }
    for name, (w, std) in expected.items():
        assert w.std().item() == pytest.approx(std, rel=0.15), name


def test_t5_scheme_keeps_queries_at_the_softmax_scale_in_use():
    """With the usual 1/sqrt(hs) softmax scale, W_q must not be shrunk a second time."""
    torch.manual_seed(0)
    model = build_model(t5_tiny(attn_scale=None))
    q = model.encoder[0].attn.qkv.weight[:64]
    assert q.std().item() == pytest.approx(64**-0.5, rel=0.15)


@torch.no_grad()
def test_t5_residual_branches_start_at_the_embedding_scale():
    """Under N(0, 1) embeddings the blocks must start large enough to change the stream:
    with 0.02 matrices a branch added ~1% to the stream and the encoder output was ~its input
    tokens (cosine 0.9997)."""
    torch.manual_seed(0)
    model = build_model(t5_tiny(n_embd=128, n_head=4)).eval()
    src = torch.randint(4, 256, (4, 16))
    x = model.wte(src)  # (B, S, C)
    bias = model.enc_rel(0, 16, 16)
    block = model.encoder[0]
    branch = block.attn(block.ln_1(x), bias=bias)  # (B, S, C)
    ratio = branch.pow(2).mean().sqrt() / x.pow(2).mean().sqrt()
    assert ratio > 0.1, ratio  # 0.02 init: ~0.01
    cos = torch.nn.functional.cosine_similarity(model.encode(src), x, dim=-1).mean()
    assert cos < 0.95, cos


@pytest.mark.parametrize("name", ["gpt2-tiny", "llama-tiny", "bert-tiny", "electra-tiny"])
def test_matmul_params_are_the_weights_the_forward_multiplies(name):
    """N of 6N = every nn.Linear weight a token passes through (blocks, a factorised
    embedding's projection, BERT's head transform, ELECTRA's replaced-token head and its
    generator) + the LM head, tied or not; not the pooler / sentence head (one position per
    sequence). ELECTRA's discriminator has no LM head; its generator's is the head counted."""
    from llmtrain.models.flops import head_flops_per_token, head_params, matmul_params

    fields = {**get_model_preset(name), "vocab_size": 300, "block_size": 16}
    with torch.device("meta"):
        model = build_model(config_from_dict(ModelConfig, fields), device="meta")
    cfg = model.cfg
    skip = ("pooler", "sentence_cls", "lm_head")
    linear = sum(m.weight.numel() for n, m in model.named_modules()
                 if isinstance(m, torch.nn.Linear) and n.split(".")[-1] not in skip)  # fmt: skip
    lm = model.gen if hasattr(model, "gen") else model  # the network whose LM head runs
    vocab_proj = lm.head_weight.numel()  # (vocab, head input): tied or its own
    assert matmul_params(cfg) == linear + vocab_proj
    head_dense = lm.head_dense.weight.numel() if lm.head_dense is not None else 0
    assert head_params(lm.cfg) == vocab_proj + head_dense
    assert head_flops_per_token(cfg) == 6 * (vocab_proj + head_dense)
