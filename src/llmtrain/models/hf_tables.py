"""Mapping tables between our state dicts and Hugging Face's, both directions (decoders).

A table is a list of rows (our key, HF key, how): how '' copies, 'T' transposes (GPT-2's
Conv1D), 'pos' shifts a position table down by `pos_offset` rows (RoBERTa's positions start
at PAD + 1), a part name ('q', 'k', 'v', 'gate', 'up', 'xk', 'xv') takes that slice of one
of our fused matrices. `rows_to_hf` / `rows_from_hf` run a table either way, so export and
import cannot drift apart. Each target also has a compatibility check (options no HF class
represents are refused, with the reason) and a config builder. Targets here: gpt2, llama,
mixtral; the encoders (bert, electra, t5) are in `hf_encoders`, the dispatch in `hf_interop`.
No `transformers` import: these are plain tensors.
"""

from __future__ import annotations

from typing import Any

import torch

from llmtrain.errors import ExportError
from llmtrain.models.config import ModelConfig
from llmtrain.models.hf_gpt2 import _BLOCK_TABLE, _TOP_TABLE, HF_ACTIVATION, _check_gpt2_compatible

Row = tuple[str, str, str]


def _refuse(target: str, bad: list[str]) -> None:
    if bad:
        raise ExportError(f"model cannot be written as HF {target}: " + "; ".join(bad))


def check_llama(cfg: ModelConfig, moe: bool) -> None:
    target = "Mixtral" if moe else "Llama"
    wanted = {
        "architecture": "decoder",
        "pos_embedding": "rope",
        "norm": "rmsnorm",
        "mlp": "swiglu",
        "bias": False,
        "norm_position": "pre",
        "qk_norm": False,
        "embedding_norm": False,
        "head_transform": False,
        "head_bias": False,
        "type_vocab_size": 0,
        "attn_scale": None,
    }
    bad = [
        f"{k}={getattr(cfg, k)!r} ({target} needs {v!r})"
        for k, v in wanted.items()
        if getattr(cfg, k) != v
    ]
    if bool(cfg.n_experts) != moe:
        bad.append(f"n_experts={cfg.n_experts} ({'Mixtral needs > 0' if moe else 'use mixtral'})")
    if moe and cfg.moe_capacity_factor:
        bad.append("moe_capacity_factor > 0 (Mixtral routes dropless)")
    if moe and not cfg.moe_renormalize:
        bad.append("moe_renormalize=false (Mixtral renormalises the top-k gates)")
    _refuse(target, bad)


def llama_config(cfg: ModelConfig, moe: bool) -> dict[str, Any]:
    out = {
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.n_embd,
        "intermediate_size": cfg.ffn_dim,
        "num_hidden_layers": cfg.n_layer,
        "num_attention_heads": cfg.n_head,
        "num_key_value_heads": cfg.kv_heads,
        "head_dim": cfg.head_dim,
        "max_position_embeddings": cfg.block_size,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,
        "tie_word_embeddings": cfg.tie_embeddings,
        "hidden_act": "silu",
        "attention_dropout": 0.0,
        "bos_token_id": 2,
        "eos_token_id": 3,
        "pad_token_id": 0,
    }
    if moe:
        out.update(
            num_local_experts=cfg.n_experts,
            num_experts_per_tok=cfg.moe_top_k,
            router_aux_loss_coef=cfg.moe_balance_coef,
            router_jitter_noise=0.0,
        )
    else:
        out.update(attention_bias=False, mlp_bias=False)
    return out


def _llama_rows(cfg: ModelConfig, moe: bool) -> list[tuple[str, str, str]]:
    """(our key, HF key, how) with how in '', 'q', 'k', 'v', 'gate', 'up'."""
    rows = [
        ("wte.weight", "model.embed_tokens.weight", ""),
        ("ln_f.weight", "model.norm.weight", ""),
    ]
    for i in range(cfg.n_layer):
        o, h = f"blocks.{i}.", f"model.layers.{i}."
        rows += [
            (o + "ln_1.weight", h + "input_layernorm.weight", ""),
            (o + "ln_2.weight", h + "post_attention_layernorm.weight", ""),
            (o + "attn.qkv.weight", h + "self_attn.q_proj.weight", "q"),
            (o + "attn.qkv.weight", h + "self_attn.k_proj.weight", "k"),
            (o + "attn.qkv.weight", h + "self_attn.v_proj.weight", "v"),
            (o + "attn.proj.weight", h + "self_attn.o_proj.weight", ""),
        ]
        if moe:
            rows += [
                (o + "mlp.router.weight", h + "mlp.gate.weight", ""),
                (o + "mlp.w_in", h + "mlp.experts.gate_up_proj", ""),
                (o + "mlp.w_out", h + "mlp.experts.down_proj", ""),
            ]
        else:
            rows += [
                (o + "mlp.fc.weight", h + "mlp.gate_proj.weight", "gate"),
                (o + "mlp.fc.weight", h + "mlp.up_proj.weight", "up"),
                (o + "mlp.proj.weight", h + "mlp.down_proj.weight", ""),
            ]
    if not cfg.tie_embeddings:
        rows.append(("lm_head.weight", "lm_head.weight", ""))
    return rows


def _part(cfg: ModelConfig, how: str) -> slice:
    q, kv, f = cfg.n_head * cfg.head_dim, cfg.kv_heads * cfg.head_dim, cfg.ffn_dim
    return {
        "q": slice(0, q),
        "k": slice(q, q + kv),
        "v": slice(q + kv, q + 2 * kv),
        "gate": slice(0, f),
        "up": slice(f, 2 * f),
        "xk": slice(0, q),  # cross-attention's fused kv (B, S, 2, nh, hs): keys first
        "xv": slice(q, 2 * q),
    }[how]


def rows_to_hf(
    ours: dict[str, torch.Tensor], rows: list[Row], cfg: ModelConfig, pos_offset: int = 0
) -> dict:
    """HF state dict (contiguous copies) from ours through `rows`; 'pos' rows get
    `pos_offset` zero rows in front (the rows HF reserves below its first position)."""
    out = {}
    for o, h, how in rows:
        t = ours[o].detach()
        if how == "pos":
            t = torch.cat([t.new_zeros(pos_offset, t.size(1)), t])  # (offset + T, E)
        else:
            t = t.t() if how == "T" else t[_part(cfg, how)] if how else t
        out[h] = t.contiguous().clone()
    return out


def rows_from_hf(
    hf_sd: dict[str, torch.Tensor], rows: list[Row], pos_offset: int = 0
) -> dict[str, torch.Tensor]:
    """Our state dict from an HF one through the same `rows`: slices concatenated back in
    table order, transposes undone, position offsets dropped. A missing HF key is an
    ExportError naming it."""
    out: dict[str, Any] = {}
    for o, h, how in rows:
        if h not in hf_sd:
            raise ExportError(f"Hugging Face weights lack {h!r} (needed for our {o!r})")
        t = hf_sd[h]
        if how == "pos":
            out[o] = t[pos_offset:]
        elif how and how != "T":
            out.setdefault(o, []).append(t)
        else:
            out[o] = t.t().contiguous() if how == "T" else t
    return {k: torch.cat(v, 0) if isinstance(v, list) else v for k, v in out.items()}


def llama_to_hf(model: torch.nn.Module, moe: bool) -> dict[str, torch.Tensor]:
    check_llama(model.cfg, moe)
    return rows_to_hf(model.state_dict(), _llama_rows(model.cfg, moe), model.cfg)


def llama_from_hf(hf_sd: dict[str, torch.Tensor], cfg: ModelConfig, moe: bool) -> dict:
    """Our state dict from an HF Llama/Mixtral one: the same rows, concatenated back."""
    return rows_from_hf(hf_sd, _llama_rows(cfg, moe))


def gpt2_rows(cfg: ModelConfig) -> list[Row]:
    rows = [(a, b, "T" if t else "") for a, b, t in _TOP_TABLE]
    for i in range(cfg.n_layer):
        rows += [
            (f"blocks.{i}.{a}", f"transformer.h.{i}.{b}", "T" if t else "")
            for a, b, t in _BLOCK_TABLE
        ]
    if not cfg.tie_embeddings:
        rows.append(("lm_head.weight", "lm_head.weight", ""))
    return rows


def gpt2_config(cfg: ModelConfig) -> dict[str, Any]:
    return {
        "vocab_size": cfg.vocab_size,
        "n_positions": cfg.block_size,
        "n_embd": cfg.n_embd,
        "n_layer": cfg.n_layer,
        "n_head": cfg.n_head,
        "n_inner": cfg.ffn_dim,
        "activation_function": HF_ACTIVATION.get(cfg.mlp, cfg.mlp),
        "layer_norm_epsilon": cfg.norm_eps,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "tie_word_embeddings": cfg.tie_embeddings,
        "bos_token_id": 2,
        "eos_token_id": 3,
        "pad_token_id": 0,
    }


def check_gpt2(cfg: ModelConfig) -> None:
    wanted = {
        "architecture": "decoder",
        "norm_position": "pre",
        "qk_norm": False,
        "embedding_norm": False,
        "head_transform": False,
        "head_bias": False,
        "type_vocab_size": 0,
        "n_experts": 0,
        "attn_scale": None,
    }
    _refuse(
        "GPT-2",
        [
            f"{k}={getattr(cfg, k)!r} (GPT-2 needs {v!r})"
            for k, v in wanted.items()
            if getattr(cfg, k) != v
        ],
    )


def gpt2_to_hf(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    check_gpt2(model.cfg)
    _check_gpt2_compatible(model)  # positions, norm, activation, heads
    out = rows_to_hf(model.state_dict(), gpt2_rows(model.cfg), model.cfg)
    out.setdefault("lm_head.weight", out["transformer.wte.weight"])  # HF always has one
    return out
