"""T5 / T5.1.1 (`T5ForConditionalGeneration`): relative position buckets, RMSNorm, no
biases, unscaled attention; a separate `lm_head` when untied (T5.1.1)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from llmtrain.errors import ExportError
from llmtrain.models.hf.base import Family, Pairs, Row, Target, common_fields, require

if TYPE_CHECKING:
    from llmtrain.models.config import ModelConfig

# T5 `feed_forward_proj` of our MLP options (HF parses "gated-X" as gated with act X, and
# maps "gated-gelu" to the tanh GELU, T5.1.1's).
T5_FFN = {"relu": "relu", "gelu": "gelu", "geglu_tanh": "gated-gelu", "swiglu": "gated-silu"}


def check(cfg: ModelConfig) -> None:
    wanted = {
        **{"architecture": "encoder_decoder", "pos_embedding": "relative", "norm": "rmsnorm"},
        **{"bias": False, "norm_position": "pre", "attn_scale": 1.0, "embedding_norm": False},
        **{"type_vocab_size": 0, "embedding_size": None, "qk_norm": False, "n_experts": 0},
    }
    bad = []
    if cfg.mlp not in T5_FFN:
        bad.append(f"mlp={cfg.mlp!r} (T5 needs one of {', '.join(T5_FFN)})")
    if cfg.kv_heads != cfg.n_head:
        bad.append(f"n_kv_head={cfg.n_kv_head} (T5 has one key/value head per query head)")
    require(cfg, "T5", wanted, bad)


def config(cfg: ModelConfig) -> dict[str, Any]:
    return {
        "vocab_size": cfg.vocab_size,
        "d_model": cfg.n_embd,
        "d_kv": cfg.head_dim,
        "d_ff": cfg.ffn_dim,
        "num_layers": cfg.n_layer,
        "num_decoder_layers": cfg.decoder_layers,
        "num_heads": cfg.n_head,
        "relative_attention_num_buckets": cfg.rel_buckets,
        "relative_attention_max_distance": cfg.rel_max_distance,
        "dropout_rate": 0.0,
        "layer_norm_epsilon": cfg.norm_eps,
        "feed_forward_proj": T5_FFN[cfg.mlp],
        "tie_word_embeddings": cfg.tie_embeddings,
        **{"decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 3},
    }


def config_json(cfg: ModelConfig) -> dict[str, Any]:
    """T5.1.1 (a separate lm_head): transformers >= 5 reads the tying from these fields."""
    untied = {"tie_word_embeddings": False, "scale_decoder_outputs": False}
    return {} if cfg.tie_embeddings else untied


def _attn(o: str, h: str, cross: bool) -> list[Row]:
    if cross:  # separate q, fused kv
        return [
            (o + "q.weight", h + "q.weight", ""),
            (o + "kv.weight", h + "k.weight", "xk"),
            (o + "kv.weight", h + "v.weight", "xv"),
            (o + "proj.weight", h + "o.weight", ""),
        ]
    return [
        (o + "qkv.weight", h + "q.weight", "q"),
        (o + "qkv.weight", h + "k.weight", "k"),
        (o + "qkv.weight", h + "v.weight", "v"),
        (o + "proj.weight", h + "o.weight", ""),
    ]


def _mlp(cfg: ModelConfig, o: str, h: str) -> list[Row]:
    if cfg.gated:
        fc = [
            (o + "fc.weight", h + "wi_0.weight", "gate"),
            (o + "fc.weight", h + "wi_1.weight", "up"),
        ]
    else:
        fc = [(o + "fc.weight", h + "wi.weight", "")]
    return [*fc, (o + "proj.weight", h + "wo.weight", "")]


def rows(cfg: ModelConfig) -> list[Row]:
    rel = "block.0.layer.0.SelfAttention.relative_attention_bias.weight"
    out = [
        ("wte.weight", "shared.weight", ""),
        ("enc_rel.embedding.weight", "encoder." + rel, ""),
        ("dec_rel.embedding.weight", "decoder." + rel, ""),
        ("enc_norm.weight", "encoder.final_layer_norm.weight", ""),
        ("dec_norm.weight", "decoder.final_layer_norm.weight", ""),
    ]
    for i in range(cfg.n_layer):
        o, h = f"encoder.{i}.", f"encoder.block.{i}.layer."
        out += [(o + "ln_1.weight", h + "0.layer_norm.weight", "")]
        out += _attn(o + "attn.", h + "0.SelfAttention.", cross=False)
        out += [(o + "ln_2.weight", h + "1.layer_norm.weight", "")]
        out += _mlp(cfg, o + "mlp.", h + "1.DenseReluDense.")
    for i in range(cfg.decoder_layers):
        o, h = f"decoder.{i}.", f"decoder.block.{i}.layer."
        out += [(o + "ln_1.weight", h + "0.layer_norm.weight", "")]
        out += _attn(o + "attn.", h + "0.SelfAttention.", cross=False)
        out += [(o + "ln_x.weight", h + "1.layer_norm.weight", "")]
        out += _attn(o + "xattn.", h + "1.EncDecAttention.", cross=True)
        out += [(o + "ln_2.weight", h + "2.layer_norm.weight", "")]
        out += _mlp(cfg, o + "mlp.", h + "2.DenseReluDense.")
    if not cfg.tie_embeddings:
        out.append(("lm_head.weight", "lm_head.weight", ""))
    return out


def outputs(ours: Any, hf: Any, idx: torch.Tensor, g: torch.Generator) -> Pairs:
    """Decoder logits on a second random sequence, encoding `idx`."""
    tgt = torch.randint(0, ours.cfg.vocab_size, (2, max(idx.size(1) // 2, 1)), generator=g)
    return [(ours(idx, tgt), hf(input_ids=idx, decoder_input_ids=tgt).logits)]


def untied_head(hf_sd: dict[str, torch.Tensor], cfg: ModelConfig, target: str) -> dict:
    """transformers >= 5 ties T5's head even when unscaled: the head is `shared`."""
    if not cfg.tie_embeddings and "lm_head.weight" not in hf_sd:
        return {**hf_sd, "lm_head.weight": hf_sd["shared.weight"]}
    return hf_sd


def import_config(hf: dict[str, Any], generator: Any = None) -> tuple[str, dict[str, Any]]:
    ffn = {v: k for k, v in T5_FFN.items()}
    proj = hf.get("feed_forward_proj", "relu")
    if proj not in ffn:
        raise ExportError(f"T5 feed_forward_proj {proj!r} is not supported")
    width, heads = hf["d_model"], hf["num_heads"]
    # transformers >= 5 stores the head's tying as scale_decoder_outputs (T5.1.1: false)
    tied = hf.get("scale_decoder_outputs", hf.get("tie_word_embeddings", True))
    return "t5", {
        **{"architecture": "encoder_decoder", "pos_embedding": "relative", "norm": "rmsnorm"},
        **{"bias": False, "attn_scale": 1.0, "mlp": ffn[proj], "init_scheme": "normal"},
        **{"n_layer": hf["num_layers"], "n_head": heads, "n_embd": width},
        "n_decoder_layer": hf.get("num_decoder_layers") or hf["num_layers"],
        "head_dim_override": None if hf["d_kv"] * heads == width else hf["d_kv"],
        "intermediate_size": hf["d_ff"],
        "rel_buckets": hf.get("relative_attention_num_buckets", 32),
        "rel_max_distance": hf.get("relative_attention_max_distance", 128),
        "norm_eps": hf.get("layer_norm_epsilon", 1e-6),
        "block_size": hf.get("n_positions", 512),
        **common_fields(hf, True),
        "tie_embeddings": bool(tied),
    }


FAMILY = Family(
    name="t5",
    model_types=("t5",),
    targets=(
        Target(
            "t5",
            *("T5Config", "T5ForConditionalGeneration", "AutoModelForSeq2SeqLM"),
            rows=rows,
            config=config,
            check=check,
            outputs=outputs,
            objective="span",
            generative=True,
            special="mask+sentinels",
            config_json=config_json,
        ),
    ),
    pick=lambda cfg: "t5" if cfg.architecture == "encoder_decoder" else None,
    import_config=import_config,
    normalise=untied_head,
)
