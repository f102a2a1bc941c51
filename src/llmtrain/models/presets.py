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
}


def get_model_preset(name: str) -> dict[str, Any]:
    """A copy of preset `name`'s ModelConfig fields; unknown names list the valid ones."""
    if name not in MODEL_PRESETS:
        raise ConfigError(
            f"unknown model preset {name!r}; choose one of {', '.join(MODEL_PRESETS)}"
        )
    return copy.deepcopy(MODEL_PRESETS[name])
