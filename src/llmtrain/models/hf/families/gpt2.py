"""GPT-2 (`GPT2LMHeadModel`): learned positions, pre-LN LayerNorm, biases, HF's `Conv1D`
linears stored (in, out), so every matrix inside a block is transposed."""

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
    rows_to_hf,
)

if TYPE_CHECKING:
    from llmtrain.models.config import ModelConfig

# our MLP option -> GPT2Config.activation_function
HF_ACTIVATION = {"gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu", "relu2": "relu2"}

# (our suffix after "blocks.{i}.", HF suffix after "transformer.h.{i}.", transposed)
_BLOCK = (
    ("ln_1.weight", "ln_1.weight", False),
    ("ln_1.bias", "ln_1.bias", False),
    ("attn.qkv.weight", "attn.c_attn.weight", True),
    ("attn.qkv.bias", "attn.c_attn.bias", False),
    ("attn.proj.weight", "attn.c_proj.weight", True),
    ("attn.proj.bias", "attn.c_proj.bias", False),
    ("ln_2.weight", "ln_2.weight", False),
    ("ln_2.bias", "ln_2.bias", False),
    ("mlp.fc.weight", "mlp.c_fc.weight", True),
    ("mlp.fc.bias", "mlp.c_fc.bias", False),
    ("mlp.proj.weight", "mlp.c_proj.weight", True),
    ("mlp.proj.bias", "mlp.c_proj.bias", False),
)
_TOP = (
    ("wte.weight", "transformer.wte.weight", ""),
    ("wpe.weight", "transformer.wpe.weight", ""),
    ("ln_f.weight", "transformer.ln_f.weight", ""),
    ("ln_f.bias", "transformer.ln_f.bias", ""),
)


def rows(cfg: ModelConfig) -> list[Row]:
    out = list(_TOP)
    for i in range(cfg.n_layer):
        out += [
            (f"blocks.{i}.{a}", f"transformer.h.{i}.{b}", "T" if t else "") for a, b, t in _BLOCK
        ]
    if not cfg.tie_embeddings:
        out.append(("lm_head.weight", "lm_head.weight", ""))
    return out


def check(cfg: ModelConfig) -> None:
    wanted = {
        **{"architecture": "decoder", "norm_position": "pre", "qk_norm": False},
        **{"embedding_norm": False, "head_transform": False, "head_bias": False},
        **{"type_vocab_size": 0, "n_experts": 0, "attn_scale": None},
        **{"pos_embedding": "learned", "norm": "layernorm", "bias": True, "kv_heads": cfg.n_head},
    }
    bad = []
    if cfg.mlp not in HF_ACTIVATION:
        bad.append(f"mlp={cfg.mlp!r} (GPT-2 needs one of {', '.join(HF_ACTIVATION)})")
    if cfg.intermediate_size not in (None, 4 * cfg.n_embd):
        bad.append(f"intermediate_size={cfg.intermediate_size} (GPT-2 needs 4*n_embd)")
    require(cfg, "GPT-2", wanted, bad)


def config(cfg: ModelConfig) -> dict[str, Any]:
    return {
        "vocab_size": cfg.vocab_size,
        "n_positions": cfg.block_size,
        "n_embd": cfg.n_embd,
        "n_layer": cfg.n_layer,
        "n_head": cfg.n_head,
        "n_inner": cfg.ffn_dim,
        "activation_function": HF_ACTIVATION.get(cfg.mlp, cfg.mlp),
        "layer_norm_epsilon": cfg.norm_eps,
        **{"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0},
        "tie_word_embeddings": cfg.tie_embeddings,
        **{"bos_token_id": 2, "eos_token_id": 3, "pad_token_id": 0},
    }


def import_config(hf: dict[str, Any], generator: Any = None) -> tuple[str, dict[str, Any]]:
    acts = {v: k for k, v in HF_ACTIVATION.items()}
    act = hf.get("activation_function", "gelu_new")
    if act not in acts:
        raise ExportError(f"GPT-2 activation {act!r} is not supported")
    fields = {
        **{"pos_embedding": "learned", "norm": "layernorm", "bias": True, "mlp": acts[act]},
        **{"n_layer": hf["n_layer"], "n_head": hf["n_head"], "n_embd": hf["n_embd"]},
        **{"block_size": hf["n_positions"], "norm_eps": hf.get("layer_norm_epsilon", 1e-5)},
        "intermediate_size": hf.get("n_inner") or 4 * hf["n_embd"],
    }
    return "gpt2", {**fields, **common_fields(hf, True)}


def to_hf_gpt2_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """HF `GPT2LMHeadModel` state dict of a GPT-2-style model, `lm_head.weight` always
    present (the same tensor as wte when tied), as `GPT2LMHeadModel.load_state_dict` wants."""
    check(model.cfg)
    out = rows_to_hf(model.state_dict(), rows(model.cfg), model.cfg)
    out.setdefault("lm_head.weight", out["transformer.wte.weight"])
    return out


def _pick(cfg: ModelConfig) -> str | None:
    plain = cfg.architecture == "decoder" and not cfg.n_experts
    return "gpt2" if plain and cfg.pos_embedding != "rope" else None


FAMILY = Family(
    name="gpt2",
    model_types=("gpt2",),
    targets=(
        Target(
            "gpt2",
            *("GPT2Config", "GPT2LMHeadModel", "AutoModelForCausalLM"),
            rows=rows,
            config=config,
            check=check,
            generative=True,
            classifier=Classifier("GPT2ForSequenceClassification", "last", ("lm_head.",)),
        ),
    ),
    pick=_pick,
    import_config=import_config,
)
