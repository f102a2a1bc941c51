"""`Electra`: a small MLM generator and a replaced-token-detection discriminator (Clark et al.
2020) that share one embedding block (token, position, segment tables and their norm).

Both are `Transformer` encoders. The generator is `generator_config(cfg)`: the width (and
heads, FFN) scaled by `model.generator_scale`, depth kept, embeddings of the discriminator's
width projected down, and a BERT head transform back up to the tied embedding (the layout of
HF `ElectraForMaskedLM`). `forward(idx, masked, u)` samples the generator at the masked
positions (inverse CDF of one uniform per token, no gradient) and scores every token of the
corrupted sequence with the discriminator head (dense -> GELU -> 1 logit, HF
`ElectraDiscriminatorPredictions`). Losses live in `llmtrain.objectives.electra`.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from llmtrain.models.config import ModelConfig
from llmtrain.models.decoder import Transformer
from llmtrain.models.layers import activation

SHARED = ("wte", "wpe", "wtt", "emb_norm")  # the embedding block both networks read


def generator_config(cfg: ModelConfig) -> ModelConfig:
    """The generator's shape: n_head·scale heads of the same head size, FFN scaled alike."""
    heads = max(1, round(cfg.n_head * cfg.generator_scale))
    width = heads * cfg.head_dim
    return replace(
        cfg,
        n_head=heads,
        n_kv_head=None,
        n_embd=width,
        head_dim_override=None,
        embedding_size=cfg.emb_dim,  # reads the discriminator's tables
        intermediate_size=max(1, cfg.ffn_dim * width // cfg.n_embd),
        head_transform=True,
        head_bias=True,
        tie_embeddings=True,
        generator_scale=0.0,
        n_experts=0,
    )


class Electra(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.disc = Transformer(cfg)
        self.gen = Transformer(generator_config(cfg))
        for name in SHARED:  # one tensor each: the generator reads the discriminator's
            setattr(self.gen, name, getattr(self.disc, name))
        self.rtd_dense = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.rtd_out = nn.Linear(cfg.n_embd, 1)

    def rtd_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Replaced-token logits (B, T) from discriminator hidden states (B, T, C)."""
        h = activation("gelu", self.rtd_dense(hidden))  # (B, T, C)
        return self.rtd_out(h).squeeze(-1)  # (B, T)

    def discriminate(self, idx: torch.Tensor, token_type: torch.Tensor | None = None):
        """Replaced-token logits (B, T) of ids (B, T): the exported model's forward."""
        return self.rtd_logits(self.disc.forward_hidden(idx, token_type=token_type))

    def forward(
        self,
        idx: torch.Tensor,
        masked: torch.Tensor,
        u: torch.Tensor,
        token_type: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """idx (B, T) masked input; masked: the selected positions, flat indices (n,) into
        (B·T) (`objectives.base.head_positions`, no host synchronisation) or a (B, T) bool
        mask; u (B, T) uniforms in [0, 1). Returns the generator's logits at those positions
        (n, V) — its head runs nowhere else —, discriminator logits (B, T) and the corrupted
        ids (B, T) the discriminator read."""
        if masked.dtype == torch.bool:
            masked = masked.flatten().nonzero().squeeze(1)  # (n,)
        gen_logits = self.gen(idx, token_type=token_type, positions=masked)  # (n, V)
        with torch.no_grad():  # a sample, not a gradient path (the paper's choice)
            probs = gen_logits.float().softmax(-1)  # (n, V)
            cdf = probs.cumsum(-1)  # (n, V)
            draw = torch.searchsorted(cdf, u.flatten()[masked].float()[:, None] * cdf[:, -1:])
            draw = draw.squeeze(1).clamp(max=probs.size(-1) - 1)  # (n,)
            corrupted = idx.flatten().index_copy(0, masked, draw.to(idx.dtype)).view_as(idx)
        return gen_logits, self.discriminate(corrupted, token_type), corrupted
