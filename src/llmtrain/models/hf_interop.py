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
from llmtrain.models.electra import generator_config

# target -> (HF config class, HF model class, the Auto class that loads it)
TARGETS = {
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", "AutoModelForCausalLM"),
    "llama": ("LlamaConfig", "LlamaForCausalLM", "AutoModelForCausalLM"),
    "mixtral": ("MixtralConfig", "MixtralForCausalLM", "AutoModelForCausalLM"),
    "bert": ("BertConfig", "BertForMaskedLM", "AutoModelForMaskedLM"),
    "bert_pretraining": ("BertConfig", "BertForPreTraining", "AutoModelForPreTraining"),
    "roberta": ("RobertaConfig", "RobertaForMaskedLM", "AutoModelForMaskedLM"),
    "electra": ("ElectraConfig", "ElectraForPreTraining", "AutoModelForPreTraining"),
    "t5": ("T5Config", "T5ForConditionalGeneration", "AutoModelForSeq2SeqLM"),
}
# written beside an ELECTRA discriminator (in `generator/`), never chosen on its own
GENERATOR = ("ElectraConfig", "ElectraForMaskedLM", "AutoModelForMaskedLM")


def pick_target(cfg: ModelConfig) -> str:
    """The HF architecture a model maps onto: `model.hf_target`, else by its options."""
    if cfg.hf_target:
        return cfg.hf_target
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
    if target == "roberta":
        return enc.roberta_rows(cfg)
    if target == "electra_generator":
        return enc.electra_generator_rows(generator_config(cfg))
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
    elif target in ("bert", "bert_pretraining", "electra", "electra_generator"):
        enc.check_bert(cfg, electra=target.startswith("electra"))
        if (target == "bert_pretraining") != cfg.sentence_head:
            raise ExportError(f"HF {target} needs model.sentence_head={target != 'bert'}")
    elif target == "roberta":
        enc.check_roberta(cfg)
    elif target == "t5":
        enc.check_t5(cfg)


def hf_config(cfg: ModelConfig, target: str) -> dict[str, Any]:
    if target == "gpt2":
        return dec.gpt2_config(cfg)
    if target in ("llama", "mixtral"):
        return dec.llama_config(cfg, target == "mixtral")
    if target == "t5":
        return enc.t5_config(cfg)
    if target == "roberta":
        return enc.roberta_config(cfg)
    if target == "electra_generator":
        return enc.bert_config(generator_config(cfg), electra=True)
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
        offset = enc.ROBERTA_POS_OFFSET if target == "roberta" else 0
        part_cfg = generator_config(cfg) if target == "electra_generator" else cfg  # q/k/v
        sd = dec.rows_to_hf(model.state_dict(), rows_of(cfg, target), part_cfg, offset)
    if target.startswith(("bert", "electra", "roberta")) and not cfg.type_vocab_size:
        prefix = target.split("_")[0] + "."  # bert. / electra. / roberta.
        sd[prefix + "embeddings.token_type_embeddings.weight"] = torch.zeros(1, cfg.emb_dim)
    return hf_config(cfg, target), sd


def from_hf(
    hf_sd: dict[str, torch.Tensor], cfg: ModelConfig, target: str, pos_offset: int = 0
) -> dict:
    """Our state dict from an HF one (the same rows run backwards); `pos_offset`: the
    position rows HF reserves below its first position (RoBERTa: pad_token_id + 1)."""
    if target == "t5" and not cfg.tie_embeddings and "lm_head.weight" not in hf_sd:
        # transformers >= 5 ties T5's head even when unscaled: the head is `shared`
        hf_sd = {**hf_sd, "lm_head.weight": hf_sd["shared.weight"]}
    if target == "mixtral":
        hf_sd = _fuse_mixtral_experts(hf_sd, cfg)
    return dec.rows_from_hf(hf_sd, rows_of(cfg, target), pos_offset)


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


def config_from_hf(
    hf: dict[str, Any], generator: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """(target, ModelConfig fields) from an HF config.json's dict (and, for ELECTRA, the
    generator's beside it); ExportError for a model type or option this library does not
    represent."""
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
    if kind in ("bert", "roberta", "electra"):
        target, fields = _bert_fields(hf, kind)
        if generator is not None:
            fields["generator_scale"] = _generator_scale(fields, generator)
        return target, fields
    if kind == "t5":
        return "t5", _t5_fields(hf)
    raise ExportError(
        f"cannot import HF model_type {kind!r}; supported: gpt2, llama, mixtral, bert, "
        "roberta, electra, t5"
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


def pos_offset_of(hf: dict[str, Any]) -> int:
    """Position rows an HF encoder reserves below its first position (RoBERTa: PAD + 1)."""
    return int(hf.get("pad_token_id", 1)) + 1 if hf.get("model_type") == "roberta" else 0


def _bert_fields(hf: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    if hf.get("hidden_act", "gelu") != "gelu":
        raise ExportError(f"{kind} hidden_act {hf['hidden_act']!r} is not supported")
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise ExportError(
            f"{kind} position_embedding_type {hf['position_embedding_type']!r} is not "
            "supported (only 'absolute')"
        )
    electra = kind == "electra"
    pretraining = "BertForPreTraining" in (hf.get("architectures") or [])
    fields = {
        **{"architecture": "encoder", "norm_position": "post", "embedding_norm": True},
        **{"pos_embedding": "learned", "norm": "layernorm", "mlp": "gelu", "bias": True},
        **{"n_layer": hf["num_hidden_layers"], "n_head": hf["num_attention_heads"]},
        "n_embd": hf["hidden_size"],
        "intermediate_size": hf["intermediate_size"],
        "block_size": hf["max_position_embeddings"] - pos_offset_of(hf),
        "type_vocab_size": hf.get("type_vocab_size", 1 if kind == "roberta" else 2),
        "norm_eps": hf.get("layer_norm_eps", 1e-12),
    }
    if electra:  # the generator is not in a discriminator checkpoint: it starts fresh
        emb = hf.get("embedding_size", hf["hidden_size"])
        fields.update(
            embedding_size=None if emb == hf["hidden_size"] else emb, generator_scale=0.25
        )
        return "electra", {**fields, **_common(hf, True)}
    fields.update(head_transform=True, head_bias=True, sentence_head=pretraining)
    if kind == "roberta":
        return "roberta", {**fields, **_common(hf, True), "hf_target": "roberta"}
    return ("bert_pretraining" if pretraining else "bert"), {**fields, **_common(hf, True)}


def _generator_scale(disc: dict[str, Any], gen: dict[str, Any]) -> float:
    """`model.generator_scale` that rebuilds the HF ELECTRA generator `gen` beside the
    discriminator `disc` (ModelConfig fields); ExportError when no scale does."""
    scale = gen["num_attention_heads"] / disc["n_head"]
    built = generator_config(ModelConfig(**{**disc, "generator_scale": scale}))
    want = {
        "n_embd": gen["hidden_size"],
        "n_head": gen["num_attention_heads"],
        "intermediate_size": gen["intermediate_size"],
        "n_layer": gen["num_hidden_layers"],
        "emb_dim": gen.get("embedding_size", gen["hidden_size"]),
    }
    bad = [f"{k}={getattr(built, k)} (HF: {v})" for k, v in want.items() if getattr(built, k) != v]
    if bad or gen.get("model_type") != "electra" or not 0 < scale <= 1:
        raise ExportError(
            "the ELECTRA generator in generator/ does not have the shape llmtrain builds for "
            f"it (heads x {scale:g} of the discriminator's, same head size and depth, FFN "
            f"scaled alike): {'; '.join(bad) or gen.get('model_type')}; remove generator/ to "
            "start a fresh generator"
        )
    return scale


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
HF_OBJECTIVE = {
    **{"bert": "mlm", "roberta": "mlm", "bert_pretraining": "sop"},
    **{"electra": "electra", "t5": "span"},
}


def hf_run_defaults(path: str | Path) -> dict[str, Any]:
    """Partial run config for `train --init-from path`: the model section from its
    config.json (plus `init_from`) and the family's default objective."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ExportError(
            f"--init-from {path}: not a Hugging Face model directory (no config.json)"
        )
    target, fields = config_from_hf(*hf_configs(path))
    model = {**fields, "init_from": str(path)}
    return {"model": model, "train": {"objective": HF_OBJECTIVE.get(target, "clm")}}


GENERATOR_DIR = "generator"  # an ELECTRA generator, beside its discriminator


def hf_configs(path: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(config.json, the ELECTRA generator's config.json or None) of an HF directory."""
    gen = path / GENERATOR_DIR / "config.json"
    main = json.loads((path / "config.json").read_text())
    has_gen = main.get("model_type") == "electra" and gen.is_file()
    return main, (json.loads(gen.read_text()) if has_gen else None)


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
    than model.block_size are cut. An ELECTRA discriminator loads its generator from
    `generator/` when there is one, else leaves the generator as built."""
    path = Path(path)
    hf_cfg, hf_sd = read_hf_dir(path)
    target, _ = config_from_hf(*hf_configs(path))
    ours = from_hf(hf_sd, model.cfg, target, pos_offset_of(hf_cfg))
    if target == "electra" and hf_configs(path)[1] is not None:
        ours.update(_generator_weights(path / GENERATOR_DIR, model.cfg, ours))
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


def _generator_weights(path: Path, cfg: ModelConfig, disc: dict[str, torch.Tensor]) -> dict:
    """The generator's own tensors (`gen.*`) from an HF `ElectraForMaskedLM` directory; its
    embedding block must equal the discriminator's, which llmtrain's ELECTRA shares."""
    from llmtrain.models.electra import SHARED

    _, gen_sd = read_hf_dir(path)
    gen = from_hf(gen_sd, cfg, "electra_generator")
    for key in [k for k in gen if k.split(".")[1] in SHARED]:
        if not torch.allclose(gen[key], disc["disc." + key[4:]][: gen[key].size(0)]):
            raise ExportError(
                f"{path}: the generator's {key[4:]} differs from the discriminator's; "
                "llmtrain's ELECTRA shares one embedding block, so it cannot hold both "
                "(remove generator/ to start a fresh generator)"
            )
        del gen[key]
    return gen
