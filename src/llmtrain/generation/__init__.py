"""Text generation from a trained `Transformer`: sampling rules, a KV cache, token and text
streams. Entry points: `generate_text` (str pieces) and `generate_tokens` (ids)."""

from llmtrain.generation.generate import generate_text, generate_tokens, stream_decode
from llmtrain.generation.sampling import check_sampling_args, sample_next_token
from llmtrain.models.kv_cache import KVCache

__all__ = [
    "KVCache",
    "check_sampling_args",
    "generate_text",
    "generate_tokens",
    "sample_next_token",
    "stream_decode",
]
