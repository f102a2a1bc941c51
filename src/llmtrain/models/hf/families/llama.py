"""Llama (`LlamaForCausalLM`) and Mixtral (`MixtralForCausalLM`): RoPE, RMSNorm, SwiGLU, no
biases, grouped KV heads; Mixtral's experts are stacked (E, 2F, C) / (E, C, F) tensors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from llmtrain.errors import ExportError
from llmtrain.models.hf.base import (
    Classifier,
    Family,
    Row,
    Target,
    common_fields,
    require,
    rows_from_hf,
    rows_to_hf,
)

if TYPE_CHECKING:
    from llmtrain.models.config import ModelConfig

_WANTED = {
    **{"architecture": "decoder", "pos_embedding": "rope", "norm": "rmsnorm", "mlp": "swiglu"},
    **{"bias": False, "norm_position": "pre", "qk_norm": False, "embedding_norm": False},
    **{"head_transform": False, "head_bias": False, "type_vocab_size": 0, "attn_scale": None},
}


def check(cfg: ModelConfig, moe: bool = False) -> None:
    label = "Mixtral" if moe else "Llama"
    bad = []
    if bool(cfg.n_experts) != moe:
        bad.append(f"n_experts={cfg.n_experts} ({'Mixtral needs > 0' if moe else 'use mixtral'})")
    if moe and cfg.moe_capacity_factor:
        bad.append("moe_capacity_factor > 0 (Mixtral routes dropless)")
    if moe and not cfg.moe_renormalize:
        bad.append("moe_renormalize=false (Mixtral renormalises the top-k gates)")
    require(cfg, label, _WANTED, bad)


def config(cfg: ModelConfig, moe: bool = False) -> dict[str, Any]:
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
        **{"hidden_act": "silu", "attention_dropout": 0.0},
        **{"bos_token_id": 2, "eos_token_id": 3, "pad_token_id": 0},
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


def rows(cfg: ModelConfig, moe: bool = False) -> list[Row]:
    out = [
        ("wte.weight", "model.embed_tokens.weight", ""),
        ("ln_f.weight", "model.norm.weight", ""),
    ]
    for i in range(cfg.n_layer):
        o, h = f"blocks.{i}.", f"model.layers.{i}."
        out += [
            (o + "ln_1.weight", h + "input_layernorm.weight", ""),
            (o + "ln_2.weight", h + "post_attention_layernorm.weight", ""),
            (o + "attn.qkv.weight", h + "self_attn.q_proj.weight", "q"),
            (o + "attn.qkv.weight", h + "self_attn.k_proj.weight", "k"),
            (o + "attn.qkv.weight", h + "self_attn.v_proj.weight", "v"),
            (o + "attn.proj.weight", h + "self_attn.o_proj.weight", ""),
        ]
        if moe:
            out += [
                (o + "mlp.router.weight", h + "mlp.gate.weight", ""),
                (o + "mlp.w_in", h + "mlp.experts.gate_up_proj", ""),
                (o + "mlp.w_out", h + "mlp.experts.down_proj", ""),
            ]
        else:
            out += [
                (o + "mlp.fc.weight", h + "mlp.gate_proj.weight", "gate"),
                (o + "mlp.fc.weight", h + "mlp.up_proj.weight", "up"),
                (o + "mlp.proj.weight", h + "mlp.down_proj.weight", ""),
            ]
    if not cfg.tie_embeddings:
        out.append(("lm_head.weight", "lm_head.weight", ""))
    return out


def llama_to_hf(model: torch.nn.Module, moe: bool) -> dict[str, torch.Tensor]:
    check(model.cfg, moe)
    return rows_to_hf(model.state_dict(), rows(model.cfg, moe), model.cfg)


def llama_from_hf(hf_sd: dict[str, torch.Tensor], cfg: ModelConfig, moe: bool) -> dict:
    """Our state dict from an HF Llama/Mixtral one: the same rows, concatenated back."""
    return rows_from_hf(hf_sd, rows(cfg, moe))


def fuse_experts(hf_sd: dict[str, torch.Tensor], cfg: ModelConfig, target: str) -> dict:
    """transformers saves Mixtral per expert (`block_sparse_moe.experts.e.w1/w3/w2`, gate,
    up, down); its modules (and our table) stack them: gate_up_proj (E, 2F, C), down (E, C, F)."""
    out = dict(hf_sd)
    for i in range(cfg.n_layer if target == "mixtral" else 0):
        old = f"model.layers.{i}.block_sparse_moe."
        if old + "gate.weight" not in hf_sd:
            continue
        new = f"model.layers.{i}.mlp."
        w = [
            [hf_sd[f"{old}experts.{e}.w{j}.weight"] for e in range(cfg.n_experts)]
            for j in (1, 2, 3)
        ]
        out[new + "gate.weight"] = hf_sd[old + "gate.weight"]
        out[new + "experts.gate_up_proj"] = torch.stack(
            [torch.cat([g, u], 0) for g, u in zip(w[0], w[2], strict=True)]
        )
        out[new + "experts.down_proj"] = torch.stack(w[1])
    return out


def _get(hf: dict[str, Any], *names: str, default: Any = None) -> Any:
    for n in names:
        if hf.get(n) is not None:
            return hf[n]
    return default


def import_config(hf: dict[str, Any], generator: Any = None) -> tuple[str, dict[str, Any]]:
    moe = hf.get("model_type") == "mixtral"
    rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        raise ExportError(f"RoPE scaling {rope.get('rope_type')!r} is not supported")
    if hf.get("attention_bias") or hf.get("mlp_bias"):
        raise ExportError("Llama with attention_bias/mlp_bias is not supported")
    heads, width = hf["num_attention_heads"], hf["hidden_size"]
    head_dim = hf.get("head_dim") or width // heads
    fields = {
        **{"pos_embedding": "rope", "norm": "rmsnorm", "mlp": "swiglu", "bias": False},
        **{"n_layer": hf["num_hidden_layers"], "n_head": heads, "n_embd": width},
        "n_kv_head": hf.get("num_key_value_heads") or heads,
        "head_dim_override": None if head_dim == width // heads else head_dim,
        "intermediate_size": hf["intermediate_size"],
        "block_size": hf.get("max_position_embeddings", 2048),
        "norm_eps": hf.get("rms_norm_eps", 1e-6),
        "rope_theta": float(_get(rope, "rope_theta", default=hf.get("rope_theta", 10000.0))),
    }
    if moe:
        fields.update(
            n_experts=hf["num_local_experts"],
            moe_top_k=hf["num_experts_per_tok"],
            moe_balance_coef=hf.get("router_aux_loss_coef", 0.01),
        )
    return ("mixtral" if moe else "llama"), {**fields, **common_fields(hf, False)}


def _pick(cfg: ModelConfig) -> str | None:
    if cfg.architecture != "decoder":
        return None
    return "mixtral" if cfg.n_experts else "llama" if cfg.pos_embedding == "rope" else None


def _target(moe: bool) -> Target:
    name = "Mixtral" if moe else "Llama"
    return Target(
        name.lower(),
        *(f"{name}Config", f"{name}ForCausalLM", "AutoModelForCausalLM"),
        rows=lambda cfg: rows(cfg, moe),
        config=lambda cfg: config(cfg, moe),
        check=lambda cfg: check(cfg, moe),
        generative=True,
        classifier=None
        if moe
        else Classifier(f"{name}ForSequenceClassification", "last", ("lm_head.",)),
    )


FAMILY = Family(
    name="llama",
    model_types=("llama", "mixtral"),
    targets=(_target(False), _target(True)),
    pick=_pick,
    import_config=import_config,
    normalise=fuse_experts,
)
