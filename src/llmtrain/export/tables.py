"""Per-architecture mapping tables between our state dict and Hugging Face's, both directions.

Each target has a compatibility check (options no HF class can represent are refused, with
the reason), a config builder and a `to_hf` / `from_hf` pair driven by one row table, so
import and export cannot drift apart. Targets: gpt2 (see `models.hf_gpt2`), llama, mixtral.
"""

from __future__ import annotations

from typing import Any

import torch

from llmtrain.errors import ExportError
from llmtrain.models.config import ModelConfig
from llmtrain.models.hf_gpt2 import HF_ACTIVATION, to_hf_gpt2_state_dict


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
    }[how]


def llama_to_hf(model: torch.nn.Module, moe: bool) -> dict[str, torch.Tensor]:
    cfg, ours = model.cfg, model.state_dict()
    check_llama(cfg, moe)
    out = {}
    for o, h, how in _llama_rows(cfg, moe):
        t = ours[o].detach()
        out[h] = (t[_part(cfg, how)] if how else t).contiguous().clone()
    return out


def llama_from_hf(hf_sd: dict[str, torch.Tensor], cfg: ModelConfig, moe: bool) -> dict:
    """Our state dict from an HF Llama/Mixtral one: the same rows, concatenated back."""
    out: dict[str, Any] = {}
    for o, h, how in _llama_rows(cfg, moe):
        if how:
            out.setdefault(o, []).append(hf_sd[h])
        else:
            out[o] = hf_sd[h]
    return {k: torch.cat(v, 0) if isinstance(v, list) else v for k, v in out.items()}


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
    return to_hf_gpt2_state_dict(model)  # checks positions, norm, activation, heads


# target -> (HF config class name, HF model class name)
TARGETS = {
    "gpt2": ("GPT2Config", "GPT2LMHeadModel"),
    "llama": ("LlamaConfig", "LlamaForCausalLM"),
    "mixtral": ("MixtralConfig", "MixtralForCausalLM"),
}


def pick_target(cfg: ModelConfig) -> str:
    """The HF architecture a model maps onto, by its options."""
    if cfg.architecture != "decoder":
        raise ExportError(
            f"export of model.architecture={cfg.architecture!r} is not implemented yet "
            "(gpt2, llama and mixtral decoders are)"
        )
    if cfg.n_experts:
        return "mixtral"
    return "llama" if cfg.pos_embedding == "rope" else "gpt2"


def to_hf(model: torch.nn.Module, target: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(HF config kwargs, HF state dict) of `model` as `target`; ExportError if impossible."""
    cfg = model.cfg
    if target == "gpt2":
        sd = gpt2_to_hf(model)
        return gpt2_config(cfg), sd
    moe = target == "mixtral"
    return llama_config(cfg, moe), llama_to_hf(model, moe)
