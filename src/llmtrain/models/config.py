"""`ModelConfig`: the typed description of a decoder-only Transformer. Every option is
orthogonal (positions, norm, MLP, KV heads, tying, dropout); presets in `presets.py` are
plain dicts of these fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from llmtrain.errors import ConfigError


@dataclass
class ModelConfig:
    vocab_size: int = 0  # 0 = take it from the prepared data's tokenizer
    block_size: int = 256  # maximum sequence length (context window)
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int | None = None  # None = n_head (MHA); 1 = MQA; between = GQA
    n_embd: int = 256
    intermediate_size: int | None = None  # None = 4*n_embd (gelu) or ~8/3*n_embd (swiglu)
    pos_embedding: Literal["learned", "rope"] = "learned"
    rope_theta: float = 10000.0
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    norm_eps: float = 1e-5
    mlp: Literal["gelu", "swiglu"] = "gelu"
    bias: bool = True
    tie_embeddings: bool = True
    dropout: float = 0.0
    init_std: float = 0.02
    init_scheme: Literal["normal", "gpt2"] = "gpt2"  # see llmtrain.models.init

    def validate(self) -> None:
        for name in ("n_layer", "n_head", "n_embd", "block_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"model.{name} must be positive, got {getattr(self, name)}")
        if self.vocab_size < 0:
            raise ConfigError(f"model.vocab_size must be >= 0, got {self.vocab_size}")
        if self.n_embd % self.n_head != 0:
            raise ConfigError(
                f"model.n_embd ({self.n_embd}) must be divisible by model.n_head ({self.n_head}); "
                f"e.g. set model.n_embd={self.n_head * max(1, round(self.n_embd / self.n_head))}"
            )
        kv = self.kv_heads
        if kv <= 0 or self.n_head % kv != 0:
            raise ConfigError(
                f"model.n_kv_head ({self.n_kv_head}) must divide model.n_head ({self.n_head})"
            )
        if self.pos_embedding == "rope" and self.head_dim % 2 != 0:
            raise ConfigError(
                f"RoPE needs an even head size; n_embd/n_head = {self.head_dim}. "
                "Change model.n_embd or model.n_head."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")

    @property
    def kv_heads(self) -> int:
        return self.n_head if self.n_kv_head is None else self.n_kv_head

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def ffn_dim(self) -> int:
        if self.intermediate_size is not None:
            return self.intermediate_size
        if self.mlp == "swiglu":
            # LLaMA: 2/3 of 4d, rounded up to a multiple of 64 for efficient matmuls.
            hidden = int(8 * self.n_embd / 3)
            return 64 * ((hidden + 63) // 64)
        return 4 * self.n_embd
