"""Task heads over a built model: `SequenceClassifier` wraps a decoder or encoder
`Transformer` and classifies a whole (right-padded) sequence from one pooled vector.

Pooling: "cls" (position 0 through a tanh pooler, BERT's; encoders), "last" (the last
non-pad token, the only position a causal decoder lets see the whole text), "mean" (mean of
the non-pad positions). Padding never changes a text's logits: encoders get a key-padding
mask, and a causal decoder's real tokens never attend to the pads on their right.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from llmtrain.errors import ConfigError


@dataclass
class HeadConfig:
    n_classes: int = 0  # set from the label map
    # auto: cls for encoders, last for decoders
    pooling: Literal["auto", "cls", "last", "mean"] = "auto"
    dropout: float = 0.1  # on the pooled vector before the classifier

    def resolved_pooling(self, architecture: str) -> str:
        if self.pooling == "auto":
            return "cls" if architecture == "encoder" else "last"
        if self.pooling == "cls" and architecture != "encoder":
            raise ConfigError(
                "finetune.head.pooling='cls' needs an encoder (a causal decoder's first token "
                "sees nothing after it): use 'last' or 'mean'"
            )
        return self.pooling


# the base's LM / sentence heads, which classification never reads
UNUSED_BASE_PARTS = ("lm_head", "head_dense", "head_norm", "pooler", "sentence_cls")


class SequenceClassifier(nn.Module):
    """`base` (a Transformer with `forward_hidden`) + pooler + linear classifier.

    forward(ids (B, T), lengths (B,), token_type (B, T) | None) -> logits (B, n_classes).
    """

    def __init__(self, base: nn.Module, cfg: HeadConfig) -> None:
        super().__init__()
        arch = base.cfg.architecture
        if arch not in ("decoder", "encoder"):
            raise ConfigError(
                f"sequence classification needs a decoder or encoder model, got {arch!r} "
                "(fine-tune an encoder_decoder with --task sft instead)"
            )
        if cfg.n_classes < 2:
            raise ConfigError(f"a classifier needs at least 2 classes, got {cfg.n_classes}")
        self.base, self.pooling = base, cfg.resolved_pooling(arch)
        C = base.cfg.n_embd
        self.pool_dense = nn.Linear(C, C) if self.pooling == "cls" else None
        self.drop = nn.Dropout(cfg.dropout)
        # no bias on decoders: HF's ...ForSequenceClassification `score` has none
        self.classifier = nn.Linear(C, cfg.n_classes, bias=self.pooling == "cls")
        self.reset_head()
        for name in UNUSED_BASE_PARTS:  # never called here: frozen so DDP waits for no grad
            for p in (
                getattr(base, name).parameters()
                if isinstance(getattr(base, name, None), nn.Module)
                else ()
            ):
                p.requires_grad_(False)
        if isinstance(getattr(base, "head_bias", None), nn.Parameter):
            base.head_bias.requires_grad_(False)

    @torch.no_grad()
    def reset_head(self, std: float = 0.02) -> None:
        for lin in (self.pool_dense, self.classifier):
            if lin is not None:
                lin.weight.normal_(0.0, std)
                if lin.bias is not None:
                    lin.bias.zero_()

    @property
    def cfg(self):  # the base model's ModelConfig (generation, export read it)
        return self.base.cfg

    def forward(
        self, idx: torch.Tensor, lengths: torch.Tensor, token_type: torch.Tensor | None = None
    ) -> torch.Tensor:
        B, T = idx.shape
        pos = torch.arange(T, device=idx.device)[None, :]  # (1, T)
        keep = pos < lengths[:, None]  # (B, T) real tokens
        mask = None if self.base.cfg.causal else keep  # pads right of a causal row are unseen
        h = self.base.forward_hidden(idx, token_type=token_type, key_mask=mask)  # (B, T, C)
        if self.pooling == "cls":
            pooled = torch.tanh(self.pool_dense(h[:, 0]))  # (B, C)
        elif self.pooling == "last":
            pooled = h[torch.arange(B, device=idx.device), lengths - 1]  # (B, C)
        else:
            w = keep.to(h.dtype)[..., None]  # (B, T, 1)
            pooled = (h * w).sum(1) / w.sum(1).clamp_min(1)  # (B, C)
        return self.classifier(self.drop(pooled))  # (B, n_classes)


def task_model(base: nn.Module, head: HeadConfig | None, lora=None) -> nn.Module:
    """The fine-tuned model's structure over a built `base`: a classifier when `head` is
    given, then LoRA adapters when `lora.rank` > 0 (only adapters and the head train). The
    same call rebuilds it for resume, eval, predict and export."""
    from llmtrain.models.lora import apply_lora

    model = base if head is None else SequenceClassifier(base, head)
    if lora is not None and lora.rank:
        apply_lora(model, lora, trainable=HEAD_MODULES)
    return model


HEAD_MODULES = ("pool_dense", "classifier")  # the SequenceClassifier's own layers


@torch.no_grad()
def resize_vocab(model: nn.Module, vocab_size: int, seed: int = 0) -> None:
    """Grow a Transformer's token embedding (and untied head, head bias) to `vocab_size`
    rows; new rows start at the mean embedding plus small noise (distinct, in range)."""
    old = model.wte.weight
    V, E = old.shape
    if vocab_size <= V:
        return
    g = torch.Generator().manual_seed(seed)

    def grown(w: torch.Tensor) -> torch.Tensor:  # (V, D) -> (vocab_size, D)
        noise = torch.randn(vocab_size - V, w.size(1), generator=g) * w.float().std() * 0.1
        rows = w.float().mean(0, keepdim=True).cpu() + noise
        return torch.cat([w, rows.to(w.device, w.dtype)])

    emb = nn.Embedding(vocab_size, E, device=old.device, dtype=old.dtype)
    emb.weight.copy_(grown(old))
    model.wte = emb
    if model.lm_head is not None:
        lin = model.lm_head
        new = nn.Linear(lin.in_features, vocab_size, bias=False, device=old.device, dtype=old.dtype)
        new.weight.copy_(grown(lin.weight))
        model.lm_head = new
    if model.head_bias is not None:
        b = model.head_bias
        model.head_bias = nn.Parameter(torch.cat([b, b.new_zeros(vocab_size - V)]))
    model.cfg.vocab_size = vocab_size
