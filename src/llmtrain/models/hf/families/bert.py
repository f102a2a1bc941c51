"""BERT (`BertForMaskedLM`; `BertForPreTraining` with the sentence head) and RoBERTa
(`RobertaForMaskedLM`: the BERT layout, positions offset by PAD + 1, one segment). The
encoder rows and config.json reading here are shared with `electra`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from llmtrain.errors import ExportError
from llmtrain.models.hf.base import (
    Classifier,
    Family,
    Pairs,
    Row,
    Target,
    common_fields,
    require,
)
from llmtrain.tokenizer.base import BOS_ID, EOS_ID, PAD_ID

if TYPE_CHECKING:
    from llmtrain.models.config import ModelConfig

# RoBERTa numbers positions from padding_idx + 1 (HF `create_position_ids_from_input_ids`):
# our position 0 is its row PAD_ID + 1, the rows below stay zero.
ROBERTA_POS_OFFSET = PAD_ID + 1
PLAIN = {"qk_norm": False, "n_experts": 0, "n_kv_head": None, "head_dim_override": None}


def check_encoder(cfg: ModelConfig, label: str, electra: bool = False) -> None:
    """The BERT-style encoder every target here (and ELECTRA) needs."""
    wanted = {
        **{"architecture": "encoder", "norm_position": "post", "embedding_norm": True},
        **{"norm": "layernorm", "bias": True, "pos_embedding": "learned", "mlp": "gelu"},
        **{"attn_scale": None, **PLAIN},
    }
    if not electra:  # (an ELECTRA model's generator options are checked by its config)
        wanted.update(head_transform=True, head_bias=True, embedding_size=None, generator_scale=0)
    bad = []
    if cfg.kv_heads != cfg.n_head:
        bad.append(f"n_kv_head={cfg.n_kv_head} ({label} has one key/value head per query head)")
    require(cfg, label, wanted, bad)


def _check(sentence_head: bool, label: str, model_class: str) -> Any:
    def check(cfg: ModelConfig) -> None:
        check_encoder(cfg, label)
        if cfg.sentence_head != sentence_head:
            why = "needs the" if sentence_head else "has no"
            bad = [f"sentence_head={cfg.sentence_head} ({model_class} {why} SOP/NSP head)"]
            require(cfg, label, {}, bad)

    return check


def encoder_config(cfg: ModelConfig) -> dict[str, Any]:
    return {
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


def roberta_config(cfg: ModelConfig) -> dict[str, Any]:
    return {
        **encoder_config(cfg),
        "max_position_embeddings": cfg.block_size + ROBERTA_POS_OFFSET,
        **{"pad_token_id": PAD_ID, "bos_token_id": BOS_ID, "eos_token_id": EOS_ID},
    }


def _layer_rows(o: str, h: str) -> list[Row]:
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


def encoder_rows(cfg: ModelConfig, o: str, h: str, pos: str = "") -> list[Row]:
    """Embeddings + layers of a BERT-style encoder: ours under prefix o, HF's under h; `pos`
    is how the position table maps ('pos' for RoBERTa's offset)."""
    e = h + "embeddings."
    rows = [
        (o + "wte.weight", e + "word_embeddings.weight", ""),
        (o + "wpe.weight", e + "position_embeddings.weight", pos),
        (o + "emb_norm.weight", e + "LayerNorm.weight", ""),
        (o + "emb_norm.bias", e + "LayerNorm.bias", ""),
    ]
    segments = "wtt.weight", e + "token_type_embeddings.weight"
    rows.append((o + segments[0], segments[1], "" if cfg.type_vocab_size else "zeros"))
    if cfg.emb_dim != cfg.n_embd:
        rows += [
            (o + "emb_proj.weight", h + "embeddings_project.weight", ""),
            (o + "emb_proj.bias", h + "embeddings_project.bias", ""),
        ]
    for i in range(cfg.n_layer):
        rows += _layer_rows(f"{o}blocks.{i}.", f"{h}encoder.layer.{i}.")
    return rows


def _head(p: str, norm: str) -> list[Row]:
    return [
        ("head_dense.weight", p + "dense.weight", ""),
        ("head_dense.bias", p + "dense.bias", ""),
        ("head_norm.weight", p + norm + ".weight", ""),
        ("head_norm.bias", p + norm + ".bias", ""),
    ]


def bert_rows(cfg: ModelConfig) -> list[Row]:
    p = "cls.predictions."
    rows = encoder_rows(cfg, "", "bert.") + _head(p + "transform.", "LayerNorm")
    rows.append(("head_bias", p + "bias", ""))
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
    rows = encoder_rows(cfg, "", "roberta.", pos="pos") + _head(p, "layer_norm")
    rows.append(("head_bias", p + "bias", ""))  # HF ties lm_head.decoder.bias to it
    if not cfg.tie_embeddings:  # untied, HF ties nothing: the bias is stored twice
        rows += [
            ("lm_head.weight", p + "decoder.weight", ""),
            ("head_bias", p + "decoder.bias", ""),
        ]
    return rows


def pretraining_outputs(ours: Any, hf: Any, idx: Any, g: Any) -> Pairs:
    """MLM logits and the sentence (NSP/SOP) logits."""
    res, hidden = hf(idx), ours.forward_hidden(idx)
    return [
        (ours.logits(hidden), res.prediction_logits),
        (ours.sentence_logits(hidden), res.seq_relationship_logits),
    ]


def pos_offset_of(hf: dict[str, Any]) -> int:
    """Position rows an HF encoder reserves below its first position (RoBERTa: PAD + 1)."""
    return int(hf.get("pad_token_id", 1)) + 1 if hf.get("model_type") == "roberta" else 0


def encoder_fields(hf: dict[str, Any], kind: str) -> dict[str, Any]:
    """ModelConfig fields of a BERT-style encoder config.json (BERT, RoBERTa, ELECTRA)."""
    if hf.get("hidden_act", "gelu") != "gelu":
        raise ExportError(f"{kind} hidden_act {hf['hidden_act']!r} is not supported")
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise ExportError(
            f"{kind} position_embedding_type {hf['position_embedding_type']!r} is not "
            "supported (only 'absolute')"
        )
    return {
        **{"architecture": "encoder", "norm_position": "post", "embedding_norm": True},
        **{"pos_embedding": "learned", "norm": "layernorm", "mlp": "gelu", "bias": True},
        **{"n_layer": hf["num_hidden_layers"], "n_head": hf["num_attention_heads"]},
        "n_embd": hf["hidden_size"],
        "intermediate_size": hf["intermediate_size"],
        "block_size": hf["max_position_embeddings"] - pos_offset_of(hf),
        "type_vocab_size": hf.get("type_vocab_size", 1 if kind == "roberta" else 2),
        "norm_eps": hf.get("layer_norm_eps", 1e-12),
        **common_fields(hf, True),
    }


def import_config(hf: dict[str, Any], generator: Any = None) -> tuple[str, dict[str, Any]]:
    kind = hf["model_type"]
    pretraining = "BertForPreTraining" in (hf.get("architectures") or [])
    fields = encoder_fields(hf, kind)
    fields.update(head_transform=True, head_bias=True, sentence_head=pretraining)
    if kind == "roberta":
        return "roberta", {**fields, "hf_target": "roberta"}
    return ("bert_pretraining" if pretraining else "bert"), fields


def _pick(cfg: ModelConfig) -> str | None:
    if cfg.architecture != "encoder" or cfg.generator_scale:
        return None
    return "bert_pretraining" if cfg.sentence_head else "bert"


def _bert_head(clf: Any) -> dict[str, torch.Tensor]:
    """Our [CLS] pooler (dense + tanh) and classifier under BERT's names."""
    return {
        "bert.pooler.dense.weight": clf.pool_dense.weight,
        "bert.pooler.dense.bias": clf.pool_dense.bias,
        "classifier.weight": clf.classifier.weight,
        "classifier.bias": clf.classifier.bias,
    }


BERT_CLASSIFIER = Classifier("BertForSequenceClassification", "cls", ("cls.",), _bert_head)

FAMILY = Family(
    name="bert",
    model_types=("bert", "roberta"),
    targets=(
        Target(
            "bert",
            *("BertConfig", "BertForMaskedLM", "AutoModelForMaskedLM"),
            rows=bert_rows,
            config=encoder_config,
            check=_check(False, "BERT", "BertForMaskedLM"),
            objective="mlm",
            special="mask",
            classifier=BERT_CLASSIFIER,
        ),
        Target(
            "bert_pretraining",
            *("BertConfig", "BertForPreTraining", "AutoModelForPreTraining"),
            rows=bert_rows,
            config=encoder_config,
            check=_check(True, "BERT", "BertForPreTraining"),
            outputs=pretraining_outputs,
            objective="sop",
            special="mask",
            classifier=BERT_CLASSIFIER,
        ),
        Target(
            "roberta",
            *("RobertaConfig", "RobertaForMaskedLM", "AutoModelForMaskedLM"),
            rows=roberta_rows,
            config=roberta_config,
            check=_check(False, "RoBERTa", "RobertaForMaskedLM"),
            objective="mlm",
            special="mask",
            pos_offset=ROBERTA_POS_OFFSET,
        ),
    ),
    pick=_pick,
    import_config=import_config,
    pos_offset_of=pos_offset_of,
)
