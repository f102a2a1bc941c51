"""Decoder-only language models: `ModelConfig` -> `build_model` -> `Transformer` (logits only).

Also here: named init schemes, FLOPs formulas, presets, the KV cache the attention writes to,
and the HF GPT-2 weight mapping.
"""

from llmtrain.models.build import build_model, num_params
from llmtrain.models.config import ModelConfig
from llmtrain.models.decoder import Transformer
from llmtrain.models.flops import flops_per_token, forward_flops_per_token, matmul_params
from llmtrain.models.init import INIT_SCHEMES, init_weights
from llmtrain.models.kv_cache import KVCache
from llmtrain.models.presets import MODEL_PRESETS, get_model_preset

__all__ = [
    "INIT_SCHEMES",
    "MODEL_PRESETS",
    "KVCache",
    "ModelConfig",
    "Transformer",
    "build_model",
    "flops_per_token",
    "forward_flops_per_token",
    "get_model_preset",
    "init_weights",
    "matmul_params",
    "num_params",
]
