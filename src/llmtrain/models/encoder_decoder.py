"""`EncoderDecoder`: T5 / T5.1.1 style — a bidirectional encoder stack and a causal decoder
stack that cross-attends to the encoder output, sharing one token embedding.

Built from the same `Block` as the decoder-only model (`cross=True` in the decoder). With
`pos_embedding='relative'` each stack has one T5 relative-bias table shared by its layers.
`forward(src, tgt_in)` returns decoder logits (B, T_tgt, vocab); losses live in objectives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from llmtrain.errors import ConfigError
from llmtrain.models.config import ModelConfig
from llmtrain.models.decoder import mask_to_bias
from llmtrain.models.layers import Block, make_norm
from llmtrain.models.positions import RelativePositionBias, SinusoidalPositions


class EncoderDecoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        cfg.validate()
        if cfg.vocab_size <= 0:
            raise ConfigError("model.vocab_size is 0; set it from the tokenizer first")
        if cfg.pos_embedding not in ("relative", "learned", "sinusoidal"):
            raise ConfigError(
                f"model.pos_embedding={cfg.pos_embedding!r} is not supported by the "
                "encoder_decoder; choose 'relative' (T5), 'learned' or 'sinusoidal'"
            )
        if cfg.norm_position != "pre":
            raise ConfigError("the encoder_decoder supports model.norm_position='pre' only")
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        pos = cfg.pos_embedding
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd) if pos == "learned" else None
        self.sinusoid = SinusoidalPositions(cfg) if pos == "sinusoidal" else None
        self.enc_rel = RelativePositionBias(cfg, True) if pos == "relative" else None
        self.dec_rel = RelativePositionBias(cfg, False) if pos == "relative" else None
        self.encoder = nn.ModuleList(Block(cfg, i, causal=False) for i in range(cfg.n_layer))
        self.enc_norm = make_norm(cfg)
        self.decoder = nn.ModuleList(
            Block(cfg, i, causal=True, cross=True) for i in range(cfg.decoder_layers)
        )
        self.dec_norm = make_norm(cfg)
        self.lm_head = (
            None if cfg.tie_embeddings else nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        )

    @property
    def head_weight(self) -> torch.Tensor:
        return self.wte.weight if self.lm_head is None else self.lm_head.weight

    def _embed(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.size(1)
        if self.cfg.block_size < T:
            raise ConfigError(
                f"sequence of {T} tokens exceeds model.block_size {self.cfg.block_size}"
            )
        x = self.wte(idx)  # (B, T, C)
        if self.wpe is not None:
            x = x + self.wpe.weight[:T]
        elif self.sinusoid is not None:
            x = x + self.sinusoid(0, T).to(x.dtype)
        p = self.cfg.drop("embd")
        return F.dropout(x, p, training=True) if self.training and p > 0 else x

    def encode(self, src: torch.Tensor) -> torch.Tensor:
        """Encoder output (B, S, C) of source ids (B, S)."""
        x = self._embed(src)
        S = src.size(1)
        bias = None if self.enc_rel is None else self.enc_rel(0, S, S)  # (nh, S, S)
        for block in self.encoder:
            x = block(x, bias=bias)
        return self.enc_norm(x)

    def decode_hidden(self, tgt: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Decoder hidden states (B, T, C) of shifted target ids (B, T) over `memory`."""
        x = self._embed(tgt)
        T = tgt.size(1)
        bias = None
        if self.dec_rel is not None:  # bias + causal mask in one tensor
            causal = torch.ones(T, T, dtype=torch.bool, device=tgt.device).tril()
            bias = self.dec_rel(0, T, T) + mask_to_bias(causal)  # (nh, T, T)
        for block in self.decoder:
            x = block(x, bias=bias, memory=memory)
        return self.dec_norm(x)

    def head_input(self, hidden: torch.Tensor) -> torch.Tensor:
        """What the output projection multiplies: T5 rescales before a tied head (Mesh TF)."""
        return hidden * self.cfg.n_embd**-0.5 if self.lm_head is None else hidden

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(self.head_input(hidden), self.head_weight)  # (..., vocab)

    def forward(
        self,
        src: torch.Tensor,
        tgt: torch.Tensor,
        *,
        head: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], Any] | None = None,
    ) -> Any:
        """Logits (B, T, vocab) of the decoder given source (B, S) and decoder input (B, T);
        `head(x, weight, bias)`, when given, runs in place of the output projection and its
        result is returned instead (as in `Decoder.forward`: e.g. the fused linear +
        cross-entropy of `objectives.fused_loss`, which never holds the logits whole)."""
        hidden = self.decode_hidden(tgt, self.encode(src))
        if head is None:
            return self.logits(hidden)
        return head(self.head_input(hidden), self.head_weight, None)
