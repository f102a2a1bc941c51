"""`Transformer`: the decoder-only language model, GPT-2 or LLaMA style by `ModelConfig` options.

`forward(idx, kv_cache)` returns logits only; losses live in `llmtrain.objectives`.
`forward_hidden` + `logits` split the same computation so callers that need the final hidden
states (or only the last position's logits, as generation does) pay for nothing more.
Construct through `llmtrain.models.build_model`, which also initialises every tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from llmtrain.errors import ConfigError
from llmtrain.models.config import ModelConfig
from llmtrain.models.kv_cache import KVCache
from llmtrain.models.layers import Block, RotaryEmbedding, make_norm


class Transformer(nn.Module):
    """Token embedding (+ learned positions) -> n_layer Blocks -> final norm -> LM head.

    With `tie_embeddings` the head reuses `wte.weight` directly (no `lm_head` module), so
    there is one tensor, one state-dict key and nothing to re-tie after moving devices.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        cfg.validate()
        if cfg.vocab_size <= 0:
            raise ConfigError(
                "model.vocab_size is 0; set it from the tokenizer (tokenizer.vocab_size) "
                "before building the model"
            )
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = (
            nn.Embedding(cfg.block_size, cfg.n_embd) if cfg.pos_embedding == "learned" else None
        )
        self.rope = RotaryEmbedding(cfg) if cfg.pos_embedding == "rope" else None
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.ln_f = make_norm(cfg)
        self.lm_head = (
            None if cfg.tie_embeddings else nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        )

    @property
    def head_weight(self) -> torch.Tensor:
        """The (vocab, C) output projection: `wte.weight` when tied."""
        return self.wte.weight if self.lm_head is None else self.lm_head.weight

    def forward_hidden(self, idx: torch.Tensor, kv_cache: KVCache | None = None) -> torch.Tensor:
        """Final-norm hidden states (B, T, C) of token ids `idx` (B, T).

        With a cache, `idx` continues the cached sequence: positions start at `kv_cache.pos`.
        """
        B, T = idx.shape  # (B, T)
        start = 0 if kv_cache is None else kv_cache.pos
        if start + T > self.cfg.block_size:
            raise ConfigError(
                f"sequence of {start + T} tokens exceeds model.block_size {self.cfg.block_size}; "
                "crop the input to the last block_size tokens"
            )
        x = self.wte(idx)  # (B, T, C)
        rope = None
        if self.wpe is not None:
            x = x + self.wpe.weight[start : start + T]  # (B, T, C) + (T, C)
        else:
            rope = self.rope(start, T)  # cos, sin: (T, hs/2) each
        if self.training and self.cfg.dropout > 0:
            x = F.dropout(x, self.cfg.dropout, training=True)  # embedding dropout
        for block in self.blocks:
            x = block(x, rope, kv_cache)  # (B, T, C)
        if kv_cache is not None:
            kv_cache.advance(T)  # after all layers, so each wrote at the same offset
        return self.ln_f(x)  # (B, T, C)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Project hidden states (..., C) to vocabulary logits (..., vocab).

        Under bf16 autocast the logits are bf16; the loss should upcast them.
        """
        return F.linear(hidden, self.head_weight)  # (..., vocab)

    def forward(self, idx: torch.Tensor, kv_cache: KVCache | None = None) -> torch.Tensor:
        """Logits (B, T, vocab) for token ids `idx` (B, T)."""
        return self.logits(self.forward_hidden(idx, kv_cache))  # (B, T, vocab)
