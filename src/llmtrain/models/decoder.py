"""`Transformer`: one stack of Blocks — a causal decoder (GPT-2, Llama, Mixtral) or a
bidirectional encoder (BERT, RoBERTa, ELECTRA) — chosen by `ModelConfig.architecture`.

`forward(idx, ...)` returns logits only; losses live in `llmtrain.objectives`.
`forward_hidden` + `logits` split the same computation so callers that need the final hidden
states (or only the last position's logits, as generation does) pay for nothing more.
`sentence_logits(hidden)` is the optional SOP/NSP head on position 0; `forward(...,
sentence=True)` returns it beside the token logits.
Construct through `llmtrain.models.build_model`, which also initialises every tensor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from llmtrain.errors import ConfigError
from llmtrain.models.config import ModelConfig
from llmtrain.models.kv_cache import KVCache
from llmtrain.models.layers import Block, activation, make_norm
from llmtrain.models.positions import (
    ALiBi,
    RelativePositionBias,
    RotaryEmbedding,
    SinusoidalPositions,
)


def mask_to_bias(allowed: torch.Tensor) -> torch.Tensor:
    """Bool (…, T, S) 'may attend' -> additive float bias (0 or -inf)."""
    zero = torch.zeros((), device=allowed.device)
    return torch.where(allowed, zero, torch.tensor(float("-inf"), device=allowed.device))


class Transformer(nn.Module):
    """Token (+ segment, + learned/sinusoidal position) embedding -> optional embedding norm
    -> n_layer Blocks -> final norm (pre-LN only) -> optional head transform -> LM head.

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
        if cfg.architecture == "encoder_decoder":
            raise ConfigError("use EncoderDecoder (build_model does) for an encoder_decoder")
        self.cfg = cfg
        pos, E = cfg.pos_embedding, cfg.emb_dim
        self.wte = nn.Embedding(cfg.vocab_size, E)
        self.wpe = nn.Embedding(cfg.block_size, E) if pos == "learned" else None
        self.wtt = nn.Embedding(cfg.type_vocab_size, E) if cfg.type_vocab_size else None
        self.sinusoid = SinusoidalPositions(cfg) if pos == "sinusoidal" else None
        self.rope = RotaryEmbedding(cfg) if pos == "rope" else None
        self.alibi = ALiBi(cfg, cfg.causal) if pos == "alibi" else None
        self.rel_bias = RelativePositionBias(cfg, not cfg.causal) if pos == "relative" else None
        self.emb_norm = make_norm(cfg, E) if cfg.embedding_norm else None
        self.emb_proj = nn.Linear(E, cfg.n_embd) if cfg.n_embd != E else None  # factorised
        self.blocks = nn.ModuleList(Block(cfg, i, cfg.causal) for i in range(cfg.n_layer))
        self.ln_f = make_norm(cfg) if cfg.norm_position == "pre" else None
        self.head_dense = nn.Linear(cfg.n_embd, E) if cfg.head_transform else None
        self.head_norm = make_norm(cfg, E) if cfg.head_transform else None
        self.head_bias = nn.Parameter(torch.empty(cfg.vocab_size)) if cfg.head_bias else None
        head_in = E if cfg.head_transform else cfg.n_embd
        self.lm_head = (
            None if cfg.tie_embeddings else nn.Linear(head_in, cfg.vocab_size, bias=False)
        )
        self.pooler = nn.Linear(cfg.n_embd, cfg.n_embd) if cfg.sentence_head else None
        self.sentence_cls = nn.Linear(cfg.n_embd, 2) if cfg.sentence_head else None

    @property
    def head_weight(self) -> torch.Tensor:
        """The (vocab, C) output projection: `wte.weight` when tied."""
        return self.wte.weight if self.lm_head is None else self.lm_head.weight

    def attention_bias(
        self,
        T: int,
        start: int = 0,
        prefix_len: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """One additive bias (B|1, nh|1, T, S) for every layer, or None for the fast path
        (plain causal or plain bidirectional attention handled inside SDPA). `key_mask`
        (B, S) bool: False keys (padding) are never attended."""
        pos_bias = None
        S = start + T
        if self.alibi is not None:
            pos_bias = self.alibi(start, T, S)  # (nh, T, S)
        elif self.rel_bias is not None:
            pos_bias = self.rel_bias(start, T, S)  # (nh, T, S)
        if pos_bias is None and prefix_len is None and key_mask is None:
            return None
        dev = self.wte.weight.device
        if not self.cfg.causal:
            allowed = None if key_mask is None else key_mask.to(dev)[:, None, None, :]
        else:
            q = torch.arange(start, S, device=dev)[:, None]  # (T, 1)
            k = torch.arange(S, device=dev)[None, :]  # (1, S)
            allowed = k <= q  # (T, S)
            if prefix_len is not None:  # prefix LM: the prefix is seen whole from anywhere
                allowed = allowed | (k < prefix_len.to(dev)[:, None, None])  # (B, T, S)
            allowed = allowed.unsqueeze(-3)  # (B|1, 1, T, S)
            if key_mask is not None:
                allowed = allowed & key_mask.to(dev)[:, None, None, :]  # (B, 1, T, S)
        bias = pos_bias if pos_bias is not None else torch.zeros((), device=dev)
        return bias if allowed is None else bias + mask_to_bias(allowed)

    def forward_hidden(
        self,
        idx: torch.Tensor,
        kv_cache: KVCache | None = None,
        token_type: torch.Tensor | None = None,
        prefix_len: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Hidden states (B, T, C) of token ids `idx` (B, T), after the last norm.

        With a cache, `idx` continues the cached sequence: positions start at `kv_cache.pos`.
        `prefix_len` (B,) makes the first prefix_len[b] positions bidirectional (prefix LM).
        `key_mask` (B, T) bool hides padding keys (classification of unequal lengths).
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
        elif self.sinusoid is not None:
            x = x + self.sinusoid(start, T).to(x.dtype)  # (B, T, C) + (T, C)
        elif self.rope is not None:
            rope = self.rope(start, T)  # cos, sin: (T, hs/2) each
        if self.wtt is not None:
            tt = torch.zeros_like(idx) if token_type is None else token_type
            x = x + self.wtt(tt)  # (B, T, C)
        if self.emb_norm is not None:
            x = self.emb_norm(x)
        p = self.cfg.drop("embd")
        if self.training and p > 0:
            x = F.dropout(x, p, training=True)  # embedding dropout
        if self.emb_proj is not None:
            x = self.emb_proj(x)  # (B, T, E) -> (B, T, C)
        bias = self.attention_bias(T, start, prefix_len, key_mask)
        for block in self.blocks:
            x = block(x, rope, kv_cache, bias)  # (B, T, C)
        if kv_cache is not None:
            kv_cache.advance(T)  # after all layers, so each wrote at the same offset
        return x if self.ln_f is None else self.ln_f(x)  # (B, T, C)

    def head_input(self, hidden: torch.Tensor) -> torch.Tensor:
        """What the output projection multiplies: `hidden` (..., C), through BERT's
        "prediction head transform" (dense + GELU + norm) where the model has one."""
        if self.head_dense is None:
            return hidden
        return self.head_norm(activation("gelu", self.head_dense(hidden)))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Project hidden states (..., C) to vocabulary logits (..., vocab).

        Under bf16 autocast the logits are bf16; the loss should upcast them.
        """
        return F.linear(self.head_input(hidden), self.head_weight, self.head_bias)

    def sentence_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """SOP/NSP logits (B, 2) from position 0 through a tanh pooler (BERT)."""
        if self.pooler is None:
            raise ConfigError("this model has no sentence head; set model.sentence_head=true")
        return self.sentence_cls(torch.tanh(self.pooler(hidden[:, 0])))  # (B, 2)

    def forward(
        self,
        idx: torch.Tensor,
        kv_cache: KVCache | None = None,
        token_type: torch.Tensor | None = None,
        prefix_len: torch.Tensor | None = None,
        *,
        sentence: bool = False,
        positions: torch.Tensor | None = None,
        head: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], Any] | None = None,
    ) -> Any:
        """Logits (B, T, vocab) for token ids `idx` (B, T); with `positions` (n,) flat
        indices into (B·T) only those rows, (n, vocab): the head's matmul at the positions
        that have a target (sparse prediction, `objectives.base.head_positions`). With
        `sentence=True` also the SOP/NSP logits (B, 2), so objectives get both heads through
        `forward` (a DDP wrapper only synchronises gradients of what its own forward
        computed). `head(x, weight, bias)`, when given, runs in place of the output
        projection and its result is returned instead of the logits: x the head's input
        (rows, C), weight (vocab, C) — e.g. an objective's fused linear + cross-entropy
        (`objectives.fused_loss`), which never holds the logits whole. It runs inside this
        forward, so DDP and FSDP see the head's weights used as usual."""
        hidden = self.forward_hidden(idx, kv_cache, token_type, prefix_len)  # (B, T, C)
        at = hidden if positions is None else hidden.flatten(0, 1).index_select(0, positions)
        out = (
            self.logits(at)
            if head is None
            else head(self.head_input(at), self.head_weight, self.head_bias)
        )
        return (out, self.sentence_logits(hidden)) if sentence else out
