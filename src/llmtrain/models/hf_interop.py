"""Hugging Face interop without `transformers`: which HF architecture a model maps onto, our
state dict <-> theirs (`to_hf`, `from_hf`, through the row tables of `hf_tables` and
`hf_encoders`), and import: `config_from_hf` (config.json -> ModelConfig fields) and
`init_from_hf(model, dir)`, which `llmtrain train --init-from DIR` runs after building.
Export (which needs `transformers` to verify itself) is `llmtrain.export.hf`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from llmtrain.errors import ExportError
from llmtrain.models import hf_encoders as enc
from llmtrain.models import hf_tables as dec
from llmtrain.models.config import ModelConfig

# target -> (HF config class, HF model class, the Auto class that loads it)
TARGETS = {
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", "AutoModelForCausalLM"),
    "llama": ("LlamaConfig", "LlamaForCausalLM", "AutoModelForCausalLM"),
    "mixtral": ("MixtralConfig", "MixtralForCausalLM", "AutoModelForCausalLM"),
    "bert": ("BertConfig", "BertForMaskedLM", "AutoModelForMaskedLM"),
    "bert_pretraining": ("BertConfig", "BertForPreTraining", "AutoModelForPreTraining"),
    "electra": ("ElectraConfig", "ElectraForPreTraining", "AutoModelForPreTraining"),
    "t5": ("T5Config", "T5ForConditionalGeneration", "AutoModelForSeq2SeqLM"),
}


def pick_target(cfg: ModelConfig) -> str:
    """The HF architecture a model maps onto, by its options."""
    if cfg.architecture == "encoder_decoder":
        return "t5"
    if cfg.architecture == "encoder":
        if cfg.generator_scale:
            return "electra"
        return "bert_pretraining" if cfg.sentence_head else "bert"
    if cfg.n_experts:
        return "mixtral"
    return "llama" if cfg.pos_embedding == "rope" else "gpt2"


def rows_of(cfg: ModelConfig, target: str) -> list[dec.Row]:
    if target == "gpt2":
        return dec.gpt2_rows(cfg)
    if target in ("llama", "mixtral"):
        return dec._llama_rows(cfg, target == "mixtral")
    if target in ("bert", "bert_pretraining"):
        return enc.bert_rows(cfg)
    if target == "electra":
        return enc.electra_rows(cfg)
    if target == "t5":
        return enc.t5_rows(cfg)
    raise ExportError(f"unknown HF target {target!r}; choose one of {', '.join(TARGETS)}")


def check_target(cfg: ModelConfig, target: str) -> None:
    """ExportError, with the reasons, when `cfg` cannot be written as `target`."""
    if target == "gpt2":
        dec.check_gpt2(cfg)
    elif target in ("llama", "mixtral"):
        dec.check_llama(cfg, target == "mixtral")
    elif target in ("bert", "bert_pretraining", "electra"):
        enc.check_bert(cfg, electra=target == "electra")
        if (target == "bert_pretraining") != cfg.sentence_head:
            raise ExportError(f"HF {target} needs model.sentence_head={target != 'bert'}")
    elif target == "t5":
        enc.check_t5(cfg)


def hf_config(cfg: ModelConfig, target: str) -> dict[str, Any]:
    if target == "gpt2":
        return dec.gpt2_config(cfg)
    if target in ("llama", "mixtral"):
        return dec.llama_config(cfg, target == "mixtral")
    if target == "t5":
        return enc.t5_config(cfg)
    return enc.bert_config(cfg, electra=target == "electra")


def to_hf(model: torch.nn.Module, target: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(HF config kwargs, HF state dict) of `model` as `target`; ExportError if impossible.
    Tied tensors appear once (HF re-ties them from the config)."""
    cfg = model.cfg
    check_target(cfg, target)
    if target == "gpt2":
        sd = dec.gpt2_to_hf(model)  # also checks positions, norm, activation, heads
        if cfg.tie_embeddings:
            sd.pop("lm_head.weight")
    else:
        sd = dec.rows_to_hf(model.state_dict(), rows_of(cfg, target), cfg)
    if target.startswith(("bert", "electra")) and not cfg.type_vocab_size:
        prefix = "electra." if target == "electra" else "bert."
        sd[prefix + "embeddings.token_type_embeddings.weight"] = torch.zeros(1, cfg.emb_dim)
    return hf_config(cfg, target), sd


def from_hf(hf_sd: dict[str, torch.Tensor], cfg: ModelConfig, target: str) -> dict:
    """Our state dict from an HF one (the same rows run backwards)."""
    if target == "t5" and not cfg.tie_embeddings and "lm_head.weight" not in hf_sd:
        # transformers >= 5 ties T5's head even when unscaled: the head is `shared`
        hf_sd = {**hf_sd, "lm_head.weight": hf_sd["shared.weight"]}
    if target == "mixtral":
        hf_sd = _fuse_mixtral_experts(hf_sd, cfg)
    return dec.rows_from_hf(hf_sd, rows_of(cfg, target))


def _fuse_mixtral_experts(hf_sd: dict[str, torch.Tensor], cfg: ModelConfig) -> dict:
    """transformers saves Mixtral per expert (`block_sparse_moe.experts.e.w1/w3/w2`, gate,
    up, down); its modules (and our table) stack them: gate_up_proj (E, 2F, C), down (E, C, F)."""
    out = dict(hf_sd)
    for i in range(cfg.n_layer):
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


def config_from_hf(hf: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(target, ModelConfig fields) from an HF config.json's dict; ExportError for a model
    type or option this library does not represent."""
    kind = hf.get("model_type")
    if kind == "gpt2":
        acts = {v: k for k, v in dec.HF_ACTIVATION.items()}
        act = hf.get("activation_function", "gelu_new")
        if act not in acts:
            raise ExportError(f"GPT-2 activation {act!r} is not supported")
        fields = {
            **{"pos_embedding": "learned", "norm": "layernorm", "bias": True, "mlp": acts[act]},
            **{"n_layer": hf["n_layer"], "n_head": hf["n_head"], "n_embd": hf["n_embd"]},
            **{"block_size": hf["n_positions"], "norm_eps": hf.get("layer_norm_epsilon", 1e-5)},
            "intermediate_size": hf.get("n_inner") or 4 * hf["n_embd"],
        }
        return "gpt2", {**fields, **_common(hf, True)}
    if kind in ("llama", "mixtral"):
        return kind, _llama_fields(hf, kind == "mixtral")
    if kind in ("bert", "electra"):
        return _bert_fields(hf, kind == "electra")
    if kind == "t5":
        return "t5", _t5_fields(hf)
    raise ExportError(
        f"cannot import HF model_type {kind!r}; supported: gpt2, llama, mixtral, bert, electra, t5"
    )


def _common(hf: dict[str, Any], tie_default: bool) -> dict[str, Any]:
    return {
        "vocab_size": hf["vocab_size"],
        "tie_embeddings": bool(hf.get("tie_word_embeddings", tie_default)),
        "dropout": 0.0,
    }


def _llama_fields(hf: dict[str, Any], moe: bool) -> dict[str, Any]:
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
    return {**fields, **_common(hf, False)}


def _bert_fields(hf: dict[str, Any], electra: bool) -> tuple[str, dict[str, Any]]:
    if hf.get("hidden_act", "gelu") != "gelu":
        raise ExportError(f"BERT/ELECTRA hidden_act {hf['hidden_act']!r} is not supported")
    pretraining = "BertForPreTraining" in (hf.get("architectures") or [])
    fields = {
        **{"architecture": "encoder", "norm_position": "post", "embedding_norm": True},
        **{"pos_embedding": "learned", "norm": "layernorm", "mlp": "gelu", "bias": True},
        **{"n_layer": hf["num_hidden_layers"], "n_head": hf["num_attention_heads"]},
        "n_embd": hf["hidden_size"],
        "intermediate_size": hf["intermediate_size"],
        "block_size": hf["max_position_embeddings"],
        "type_vocab_size": hf.get("type_vocab_size", 2),
        "norm_eps": hf.get("layer_norm_eps", 1e-12),
    }
    if electra:  # the generator is not in a discriminator checkpoint: it starts fresh
        emb = hf.get("embedding_size", hf["hidden_size"])
        fields.update(
            embedding_size=None if emb == hf["hidden_size"] else emb, generator_scale=0.25
        )
        return "electra", {**fields, **_common(hf, True)}
    fields.update(head_transform=True, head_bias=True, sentence_head=pretraining)
    return ("bert_pretraining" if pretraining else "bert"), {**fields, **_common(hf, True)}


def _t5_fields(hf: dict[str, Any]) -> dict[str, Any]:
    ffn = {v: k for k, v in enc.T5_FFN.items()}
    proj = hf.get("feed_forward_proj", "relu")
    if proj not in ffn:
        raise ExportError(f"T5 feed_forward_proj {proj!r} is not supported")
    width, heads = hf["d_model"], hf["num_heads"]
    # transformers >= 5 stores the head's tying as scale_decoder_outputs (T5.1.1: false)
    tied = hf.get("scale_decoder_outputs", hf.get("tie_word_embeddings", True))
    return {
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
        **_common(hf, True),
        "tie_embeddings": bool(tied),
    }


# the objective an imported family continues pre-training with by default
HF_OBJECTIVE = {"bert": "mlm", "bert_pretraining": "sop", "electra": "electra", "t5": "span"}


def hf_run_defaults(path: str | Path) -> dict[str, Any]:
    """Partial run config for `train --init-from path`: the model section from its
    config.json (plus `init_from`) and the family's default objective."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ExportError(
            f"--init-from {path}: not a Hugging Face model directory (no config.json)"
        )
    target, fields = config_from_hf(json.loads((path / "config.json").read_text()))
    model = {**fields, "init_from": str(path)}
    return {"model": model, "train": {"objective": HF_OBJECTIVE.get(target, "clm")}}


def read_hf_dir(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(config.json dict, state dict) of a local HF directory in safetensors (one file or
    an index of shards). Pickled `.bin` weights are refused: loading them runs code."""
    import safetensors.torch

    path = Path(path)
    if not (path / "config.json").is_file():
        raise ExportError(f"{path} is not a Hugging Face model directory (no config.json)")
    hf_cfg = json.loads((path / "config.json").read_text())
    index = path / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (path / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        raise ExportError(
            f"{path} has no model.safetensors; convert pickled weights with transformers' "
            "`save_pretrained(..., safe_serialization=True)` first"
        )
    sd: dict[str, torch.Tensor] = {}
    for f in files:
        sd.update(safetensors.torch.load_file(str(path / f)))
    return hf_cfg, sd


@torch.no_grad()
def init_from_hf(model: torch.nn.Module, path: str | Path) -> str:
    """Copy the weights of the HF directory `path` into `model` (built from a config that
    matches it, e.g. `config_from_hf`); returns the target. Learned position tables longer
    than model.block_size are cut. An ELECTRA discriminator leaves the generator as built."""
    hf_cfg, hf_sd = read_hf_dir(path)
    target, _ = config_from_hf(hf_cfg)
    ours = from_hf(hf_sd, model.cfg, target)
    own = model.state_dict()
    for key, t in ours.items():
        if key.endswith("wpe.weight") and t.size(0) > own[key].size(0):
            ours[key] = t[: own[key].size(0)]  # a shorter context than the checkpoint's
        if ours[key].shape != own[key].shape:
            raise ExportError(
                f"{path}: {key} has shape {tuple(ours[key].shape)} but the model's is "
                f"{tuple(own[key].shape)}; build the model from the HF config (--init-from "
                "does) and do not override its shape"
            )
    missing, unexpected = model.load_state_dict(ours, strict=False)
    missing = [k for k in missing if not (target == "electra" and k.startswith("gen."))]
    if missing or unexpected:
        raise ExportError(f"{path}: weights missing {missing[:5]}, unexpected {unexpected[:5]}")
    return target
