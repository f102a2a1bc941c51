"""Named model shapes: plain dicts of `ModelConfig` fields, merged under a user's config.

`vocab_size` 0 means "take it from the tokenizer"; the large presets pin the vocab of the
tokenizer they were published with. `get_model_preset(name)` returns a fresh copy.
"""

from __future__ import annotations

import copy
from typing import Any

from llmtrain.errors import ConfigError

_GPT2 = {"pos_embedding": "learned", "norm": "layernorm", "mlp": "gelu", "bias": True}
# The published GPT-2 shapes keep GPT-2's own tanh-approximated GELU (`gelu_new`).
_GPT2_ORIGINAL = {**_GPT2, "mlp": "gelu_tanh"}
_LLAMA = {
    "pos_embedding": "rope",
    "norm": "rmsnorm",
    "mlp": "swiglu",
    "bias": False,
    "tie_embeddings": False,
}

# BERT (Devlin et al. 2019): post-LN, embedding LayerNorm, segment embeddings, MLM head
# transform, pooler + NSP/SOP head, eps 1e-12, exact GELU.
_BERT = {
    **{"architecture": "encoder", "norm_position": "post", "embedding_norm": True},
    **{"type_vocab_size": 2, "head_transform": True, "head_bias": True, "sentence_head": True},
    **{"norm_eps": 1e-12, "mlp": "gelu", "pos_embedding": "learned"},
}
# T5.1.1 (Raffel et al. 2020; v1.1 release notes): relative bias, RMSNorm, no biases, GeGLU
# (HF "gated-gelu" = tanh GELU), untied head, unscaled attention, T5's N(0, 1) embeddings.
_T5 = {
    **{"architecture": "encoder_decoder", "pos_embedding": "relative", "norm": "rmsnorm"},
    **{"norm_eps": 1e-6, "bias": False, "mlp": "geglu_tanh", "tie_embeddings": False},
    **{"attn_scale": 1.0, "init_scheme": "t5"},
}
# ELECTRA (Clark et al. 2020): a BERT-style discriminator (post-LN, embedding LayerNorm,
# segments, no MLM head of its own) + a generator at generator_scale of its width.
# BERT's init, N(0, 0.02) without GPT-2's depth-scaled residual projections (measured on
# bench/objectives_learning.py's ELECTRA run: RTD AUC 0.728 vs 0.647 with the GPT-2 scheme).
_ELECTRA = {
    **{k: v for k, v in _BERT.items() if k not in ("head_transform", "head_bias")},
    **{"sentence_head": False, "generator_scale": 0.25, "init_scheme": "normal"},
}

MODEL_PRESETS: dict[str, dict[str, Any]] = {
    # Test size: a forward + backward step takes milliseconds.
    "gpt2-tiny": {**_GPT2, "n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 64},
    # CPU demo size: ~0.8M non-embedding parameters.
    "gpt2-mini": {**_GPT2, "n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 256},
    # GPT-2 small / medium (Radford et al. 2019); vocab 50257 padded to 50304 = 64 * 786.
    "gpt2-124m": {
        **_GPT2_ORIGINAL,
        **{"n_layer": 12, "n_head": 12, "n_embd": 768, "block_size": 1024, "vocab_size": 50304},
    },
    "gpt2-350m": {
        **_GPT2_ORIGINAL,
        **{"n_layer": 24, "n_head": 16, "n_embd": 1024, "block_size": 1024, "vocab_size": 50304},
    },
    "llama-tiny": {
        **_LLAMA,
        **{"n_layer": 2, "n_head": 4, "n_kv_head": 2, "n_embd": 64, "block_size": 64},
    },
    "llama-mini": {
        **_LLAMA,
        **{"n_layer": 4, "n_head": 4, "n_kv_head": 2, "n_embd": 128, "block_size": 256},
    },
    # Llama 3.2 1B's shape (tied embeddings, rope_theta 5e5); trained here at 2048 context.
    "llama-1b": {
        **_LLAMA,
        **{"n_layer": 16, "n_head": 32, "n_kv_head": 8, "n_embd": 2048},
        **{"intermediate_size": 8192, "rope_theta": 500000.0, "tie_embeddings": True},
        **{"block_size": 2048, "vocab_size": 128256},
    },
    "mixtral-tiny": {
        **_LLAMA,
        **{"n_layer": 2, "n_head": 4, "n_kv_head": 2, "n_embd": 64, "block_size": 64},
        **{"n_experts": 4, "moe_top_k": 2, "intermediate_size": 128},
    },
    "bert-tiny": {**_BERT, "n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 64},
    # BERT-base: 110M parameters with its 30522-token WordPiece vocabulary.
    "bert-base": {
        **_BERT,
        **{"n_layer": 12, "n_head": 12, "n_embd": 768, "block_size": 512, "vocab_size": 30522},
    },
    "electra-tiny": {
        **_ELECTRA,
        **{"n_layer": 2, "n_head": 4, "n_embd": 64, "block_size": 64, "embedding_size": 32},
    },
    # ELECTRA-Small (Clark et al. 2020, Table 6): 12 layers, hidden 256, 4 heads, FFN 1024,
    # embeddings 128, generator 1/4 of the width; 14M parameters with the 30522 vocabulary.
    "electra-small": {
        **_ELECTRA,
        **{"n_layer": 12, "n_head": 4, "n_embd": 256, "embedding_size": 128},
        **{"intermediate_size": 1024, "block_size": 512, "vocab_size": 30522},
    },
    "t5-tiny": {**_T5, "n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 64},
    # T5.1.1-small's shape (77M): d_model 512, 6 heads of 64, d_ff 1024, 8+8 layers, 32128 vocab.
    "t5-small": {
        **_T5,
        **{"n_layer": 8, "n_head": 6, "n_embd": 512, "head_dim_override": 64},
        **{"intermediate_size": 1024, "block_size": 512, "vocab_size": 32128},
    },
}


def default_objective(model: dict[str, Any]) -> str:
    """The objective a model shape trains with by default (`train.objective`), from its
    fields: span for an encoder-decoder, ELECTRA when it builds a generator, SOP when an
    encoder has a sentence head, MLM for another encoder, next-token (clm) for a decoder."""
    arch = model.get("architecture", "decoder")
    if arch == "encoder_decoder":
        return "span"
    if arch == "encoder":
        if model.get("generator_scale", 0.0):
            return "electra"
        return "sop" if model.get("sentence_head", False) else "mlm"
    return "clm"


def get_model_preset(name: str) -> dict[str, Any]:
    """A copy of preset `name`'s ModelConfig fields; unknown names list the valid ones."""
    if name not in MODEL_PRESETS:
        raise ConfigError(
            f"unknown model preset {name!r}; choose one of {', '.join(MODEL_PRESETS)}"
        )
    return copy.deepcopy(MODEL_PRESETS[name])
