"""Mapping tables for the encoder families: BERT (`BertForMaskedLM`, or `BertForPreTraining`
with the sentence head), RoBERTa (`RobertaForMaskedLM`: the BERT layout, positions offset by
PAD + 1, one segment), ELECTRA's discriminator (`ElectraForPreTraining`) and generator
(`ElectraForMaskedLM`), and T5 / T5.1.1 (`T5ForConditionalGeneration`). Rows, checks and
config builders as in `hf_tables`.
"""

from __future__ import annotations

from typing import Any

from llmtrain.models.config import ModelConfig
from llmtrain.models.hf_tables import Row, _refuse
from llmtrain.tokenizer.base import BOS_ID, EOS_ID, PAD_ID

# RoBERTa numbers positions from padding_idx + 1 (HF `create_position_ids_from_input_ids`):
# our position 0 is its row PAD_ID + 1, the rows below stay zero.
ROBERTA_POS_OFFSET = PAD_ID + 1

# T5 `feed_forward_proj` of our MLP options (HF parses "gated-X" as gated with act X, and
# maps "gated-gelu" to the tanh GELU, T5.1.1's).
T5_FFN = {"relu": "relu", "gelu": "gelu", "geglu_tanh": "gated-gelu", "swiglu": "gated-silu"}


def _mismatches(cfg: ModelConfig, target: str, wanted: dict[str, Any]) -> list[str]:
    return [
        f"{k}={getattr(cfg, k)!r} ({target} needs {v!r})"
        for k, v in wanted.items()
        if getattr(cfg, k) != v
    ]


_PLAIN = {"qk_norm": False, "n_experts": 0, "n_kv_head": None, "head_dim_override": None}


def check_bert(cfg: ModelConfig, electra: bool = False, target: str = "") -> None:
    target = target or ("ELECTRA" if electra else "BERT")
    wanted = {
        **{"architecture": "encoder", "norm_position": "post", "embedding_norm": True},
        **{"norm": "layernorm", "bias": True, "pos_embedding": "learned", "mlp": "gelu"},
        **{"attn_scale": None, **_PLAIN},
    }
    if not electra:  # (an ELECTRA model's generator options are checked by its config)
        wanted.update(head_transform=True, head_bias=True, embedding_size=None, generator_scale=0)
    bad = _mismatches(cfg, target, wanted)
    if cfg.kv_heads != cfg.n_head:
        bad.append(f"n_kv_head={cfg.n_kv_head} ({target} has one key/value head per query head)")
    _refuse(target, bad)


def check_roberta(cfg: ModelConfig) -> None:
    check_bert(cfg, target="RoBERTa")
    if cfg.sentence_head:
        _refuse("RoBERTa", ["sentence_head=true (RobertaForMaskedLM has no SOP/NSP head)"])


def roberta_config(cfg: ModelConfig) -> dict[str, Any]:
    return {
        **bert_config(cfg),
        "max_position_embeddings": cfg.block_size + ROBERTA_POS_OFFSET,
        **{"pad_token_id": PAD_ID, "bos_token_id": BOS_ID, "eos_token_id": EOS_ID},
    }


def bert_config(cfg: ModelConfig, electra: bool = False) -> dict[str, Any]:
    out = {
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.n_embd,
        "num_hidden_layers": cfg.n_layer,
        "num_attention_heads": cfg.n_head,
        "intermediate_size": cfg.ffn_dim,
        "hidden_act": "gelu",
        "max_position_embeddings": cfg.block_size,
        "type_vocab_size": max(cfg.type_vocab_size, 1),  # HF always has a segment table
        "layer_norm_eps": cfg.norm_eps,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "tie_word_embeddings": cfg.tie_embeddings,
        "pad_token_id": 0,
    }
    if electra:
        out["embedding_size"] = cfg.emb_dim
    return out


def _bert_layer_rows(o: str, h: str) -> list[Row]:
    a = h + "attention."
    return [
        (o + "attn.qkv.weight", a + "self.query.weight", "q"),
        (o + "attn.qkv.weight", a + "self.key.weight", "k"),
        (o + "attn.qkv.weight", a + "self.value.weight", "v"),
        (o + "attn.qkv.bias", a + "self.query.bias", "q"),
        (o + "attn.qkv.bias", a + "self.key.bias", "k"),
        (o + "attn.qkv.bias", a + "self.value.bias", "v"),
        (o + "attn.proj.weight", a + "output.dense.weight", ""),
        (o + "attn.proj.bias", a + "output.dense.bias", ""),
        (o + "ln_1.weight", a + "output.LayerNorm.weight", ""),
        (o + "ln_1.bias", a + "output.LayerNorm.bias", ""),
        (o + "mlp.fc.weight", h + "intermediate.dense.weight", ""),
        (o + "mlp.fc.bias", h + "intermediate.dense.bias", ""),
        (o + "mlp.proj.weight", h + "output.dense.weight", ""),
        (o + "mlp.proj.bias", h + "output.dense.bias", ""),
        (o + "ln_2.weight", h + "output.LayerNorm.weight", ""),
        (o + "ln_2.bias", h + "output.LayerNorm.bias", ""),
    ]


def _encoder_rows(cfg: ModelConfig, o: str, h: str, pos: str = "") -> list[Row]:
    """Embeddings + layers of a BERT-style encoder: ours under prefix o, HF's under h; `pos`
    is how the position table maps ('pos' for RoBERTa's offset)."""
    e = h + "embeddings."
    rows = [
        (o + "wte.weight", e + "word_embeddings.weight", ""),
        (o + "wpe.weight", e + "position_embeddings.weight", pos),
        (o + "emb_norm.weight", e + "LayerNorm.weight", ""),
        (o + "emb_norm.bias", e + "LayerNorm.bias", ""),
    ]
    if cfg.type_vocab_size:  # otherwise exported as a zero table of one segment
        rows.append((o + "wtt.weight", e + "token_type_embeddings.weight", ""))
    if cfg.emb_dim != cfg.n_embd:
        rows += [
            (o + "emb_proj.weight", h + "embeddings_project.weight", ""),
            (o + "emb_proj.bias", h + "embeddings_project.bias", ""),
        ]
    for i in range(cfg.n_layer):
        rows += _bert_layer_rows(f"{o}blocks.{i}.", f"{h}encoder.layer.{i}.")
    return rows


def bert_rows(cfg: ModelConfig) -> list[Row]:
    p = "cls.predictions."
    rows = _encoder_rows(cfg, "", "bert.") + [
        ("head_dense.weight", p + "transform.dense.weight", ""),
        ("head_dense.bias", p + "transform.dense.bias", ""),
        ("head_norm.weight", p + "transform.LayerNorm.weight", ""),
        ("head_norm.bias", p + "transform.LayerNorm.bias", ""),
        ("head_bias", p + "bias", ""),
    ]
    if not cfg.tie_embeddings:
        rows.append(("lm_head.weight", p + "decoder.weight", ""))
    if cfg.sentence_head:
        rows += [
            ("pooler.weight", "bert.pooler.dense.weight", ""),
            ("pooler.bias", "bert.pooler.dense.bias", ""),
            ("sentence_cls.weight", "cls.seq_relationship.weight", ""),
            ("sentence_cls.bias", "cls.seq_relationship.bias", ""),
        ]
    return rows


def roberta_rows(cfg: ModelConfig) -> list[Row]:
    p = "lm_head."
    rows = _encoder_rows(cfg, "", "roberta.", pos="pos") + [
        ("head_dense.weight", p + "dense.weight", ""),
        ("head_dense.bias", p + "dense.bias", ""),
        ("head_norm.weight", p + "layer_norm.weight", ""),
        ("head_norm.bias", p + "layer_norm.bias", ""),
        ("head_bias", p + "bias", ""),  # HF ties lm_head.decoder.bias to it
    ]
    if not cfg.tie_embeddings:  # untied, HF ties nothing: the bias is stored twice
        rows += [
            ("lm_head.weight", p + "decoder.weight", ""),
            ("head_bias", p + "decoder.bias", ""),
        ]
    return rows


def electra_generator_rows(gen: ModelConfig) -> list[Row]:
    """The generator (`Electra.gen`, config `generator_config(cfg)`) as `ElectraForMaskedLM`:
    its head transform is `generator_predictions`, its tied output `generator_lm_head`."""
    p = "generator_predictions."
    return _encoder_rows(gen, "gen.", "electra.") + [
        ("gen.head_dense.weight", p + "dense.weight", ""),
        ("gen.head_dense.bias", p + "dense.bias", ""),
        ("gen.head_norm.weight", p + "LayerNorm.weight", ""),
        ("gen.head_norm.bias", p + "LayerNorm.bias", ""),
        ("gen.head_bias", "generator_lm_head.bias", ""),
    ]


def electra_rows(cfg: ModelConfig) -> list[Row]:
    """The discriminator (`Electra.disc` + its RTD head); the generator is
    `electra_generator_rows`, exported beside it."""
    d = "discriminator_predictions."
    return _encoder_rows(cfg, "disc.", "electra.") + [
        ("rtd_dense.weight", d + "dense.weight", ""),
        ("rtd_dense.bias", d + "dense.bias", ""),
        ("rtd_out.weight", d + "dense_prediction.weight", ""),
        ("rtd_out.bias", d + "dense_prediction.bias", ""),
    ]


def check_t5(cfg: ModelConfig) -> None:
    wanted = {
        **{"architecture": "encoder_decoder", "pos_embedding": "relative", "norm": "rmsnorm"},
        **{"bias": False, "norm_position": "pre", "attn_scale": 1.0, "embedding_norm": False},
        **{"type_vocab_size": 0, "embedding_size": None, "qk_norm": False, "n_experts": 0},
    }
    bad = _mismatches(cfg, "T5", wanted)
    if cfg.mlp not in T5_FFN:
        bad.append(f"mlp={cfg.mlp!r} (T5 needs one of {', '.join(T5_FFN)})")
    if cfg.kv_heads != cfg.n_head:
        bad.append(f"n_kv_head={cfg.n_kv_head} (T5 has one key/value head per query head)")
    _refuse("T5", bad)


def t5_config(cfg: ModelConfig) -> dict[str, Any]:
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
        "decoder_start_token_id": 0,
        "pad_token_id": 0,
        "eos_token_id": 3,
    }


def _t5_attn(o: str, h: str, cross: bool) -> list[Row]:
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


def _t5_mlp(cfg: ModelConfig, o: str, h: str) -> list[Row]:
    if cfg.gated:
        fc = [
            (o + "fc.weight", h + "wi_0.weight", "gate"),
            (o + "fc.weight", h + "wi_1.weight", "up"),
        ]
    else:
        fc = [(o + "fc.weight", h + "wi.weight", "")]
    return [*fc, (o + "proj.weight", h + "wo.weight", "")]


def t5_rows(cfg: ModelConfig) -> list[Row]:
    rows = [
        ("wte.weight", "shared.weight", ""),
        (
            "enc_rel.embedding.weight",
            "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
            "",
        ),
        (
            "dec_rel.embedding.weight",
            "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
            "",
        ),
        ("enc_norm.weight", "encoder.final_layer_norm.weight", ""),
        ("dec_norm.weight", "decoder.final_layer_norm.weight", ""),
    ]
    for i in range(cfg.n_layer):
        o, h = f"encoder.{i}.", f"encoder.block.{i}.layer."
        rows += [(o + "ln_1.weight", h + "0.layer_norm.weight", "")]
        rows += _t5_attn(o + "attn.", h + "0.SelfAttention.", cross=False)
        rows += [(o + "ln_2.weight", h + "1.layer_norm.weight", "")]
        rows += _t5_mlp(cfg, o + "mlp.", h + "1.DenseReluDense.")
    for i in range(cfg.decoder_layers):
        o, h = f"decoder.{i}.", f"decoder.block.{i}.layer."
        rows += [(o + "ln_1.weight", h + "0.layer_norm.weight", "")]
        rows += _t5_attn(o + "attn.", h + "0.SelfAttention.", cross=False)
        rows += [(o + "ln_x.weight", h + "1.layer_norm.weight", "")]
        rows += _t5_attn(o + "xattn.", h + "1.EncDecAttention.", cross=True)
        rows += [(o + "ln_2.weight", h + "2.layer_norm.weight", "")]
        rows += _t5_mlp(cfg, o + "mlp.", h + "2.DenseReluDense.")
    if not cfg.tie_embeddings:
        rows.append(("lm_head.weight", "lm_head.weight", ""))
    return rows
