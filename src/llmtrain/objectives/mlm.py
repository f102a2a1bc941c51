"""Masked LM (BERT) and the sentence-level tasks that ride on it (ALBERT SOP, BERT NSP).

Masking is dynamic (RoBERTa): a fresh mask every time a window is seen, drawn from a
generator that is a pure function of (seed, step, micro-batch) so resume is exact. Of the
selected positions (default 15 %), 80 % become MASK, 10 % a random token, 10 % stay. With
whole-word masking whole words are selected: word starts come from the tokenizer's pieces
(`llmtrain.tokenizer.words`), and for Chinese from a segmenter (jieba) run on each window.
Special ids 0..3 (PAD, UNK, BOS, EOS — document separators) are never selected.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from llmtrain.errors import ConfigError
from llmtrain.models.moe import moe_aux_loss
from llmtrain.objectives.base import (
    IGNORE_INDEX,
    N_SPECIAL,
    Batch,
    Objective,
    accuracy_counts,
    seeded_generator,
)
from llmtrain.tokenizer.base import BOS_ID, EOS_ID  # CLS and SEP of a sentence pair


def mask_tokens(
    x: torch.Tensor,
    g: torch.Generator,
    *,
    prob: float,
    mask_id: int,
    vocab: int,
    mask_frac: float = 0.8,
    random_frac: float = 0.1,
    word_starts: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) from ids x (B, T): targets hold the original id where selected.
    `word_starts` (B, T) bool: select whole words (a start and the tokens up to the next)."""
    B, T = x.shape
    maskable = x >= N_SPECIAL  # (B, T)
    if word_starts is None:
        unit = torch.arange(B * T).view(B, T)  # every token its own unit
    else:  # a unit = a word: cumulative count of word starts along the row
        starts = word_starts | ~maskable
        unit = starts.long().cumsum(dim=1) + torch.arange(B)[:, None] * (T + 1)
    picked_unit = torch.rand(B * (T + 1) + B * T, generator=g) < prob
    selected = picked_unit[unit] & maskable  # (B, T)
    if not selected.any():  # at least one target per micro-batch keeps the loss defined
        cand = maskable.flatten().nonzero().flatten()
        if cand.numel():
            pick = cand[torch.randint(cand.numel(), (1,), generator=g)]
            selected.view(-1)[pick] = True
    targets = torch.where(selected, x, torch.full_like(x, IGNORE_INDEX))
    r = torch.rand(B, T, generator=g)
    inputs = x.clone()
    inputs[selected & (r < mask_frac)] = mask_id
    rand_pos = selected & (r >= mask_frac) & (r < mask_frac + random_frac)
    inputs[rand_pos] = torch.randint(N_SPECIAL, vocab, (B, T), generator=g)[rand_pos]
    return inputs, targets


class MLM(Objective):
    name = "mlm"
    architectures = ("encoder",)
    extra_vocab = 1  # MASK

    def __init__(self, vocab_size: int, seed: int = 0, **options: Any) -> None:
        super().__init__(vocab_size, seed, **options)
        self.prob = float(options.get("mask_prob", 0.15))
        self.mask_frac = float(options.get("mask_token_frac", 0.8))
        self.random_frac = float(options.get("random_token_frac", 0.1))
        # whole words: `word_boundaries` (a tokenizer.words.WordBoundaries), or a bare
        # (V,) bool table of word-start ids as `word_start`
        self.words = options.get("word_boundaries")
        self.word_start: torch.Tensor | None = options.get("word_start")

    def word_starts(self, x: torch.Tensor) -> torch.Tensor | None:
        """(B, T) bool word starts of ids x (B, T), or None for token-level masking."""
        if self.words is not None:
            return torch.from_numpy(self.words.starts(x.cpu().numpy()))
        return None if self.word_start is None else self.word_start[x]

    def _mask(self, x: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return mask_tokens(
            x,
            g,
            prob=self.prob,
            mask_id=self.mask_id,
            vocab=self.tok_vocab,
            mask_frac=self.mask_frac,
            random_frac=self.random_frac,
            word_starts=self.word_starts(x),
        )

    def make_batch(self, x: torch.Tensor, y: torch.Tensor, step: int, micro: int) -> Batch:
        inputs, targets = self._mask(x, seeded_generator(self.seed, step, micro))
        n = int((targets != IGNORE_INDEX).sum())
        return Batch({"x": inputs, "targets": targets}, n_targets=n, n_tokens=int(x.numel()))

    def forward(self, model: Any, batch: Batch) -> dict[str, Any]:
        return {"logits": model(batch.tensors["x"]), "aux": moe_aux_loss(model)}

    def loss(self, out: dict[str, Any], batch: Batch):
        loss_sum = self._ce(out["logits"], batch.tensors["targets"])
        if out["aux"] is not None:
            loss_sum = loss_sum + out["aux"] * batch.n_targets
        return loss_sum, accuracy_counts(out["logits"], batch.tensors["targets"])


class SentenceOrder(MLM):
    """MLM + a 2-way sentence task read at position 0. Each window's first T - 3 tokens are
    cut at a random point into two consecutive spans A, B and laid out in the RoBERTa pair
    format `<s> A </s> B </s>` (BOS as CLS, EOS as SEP; segment type 0 up to the first SEP,
    1 after), so the pooler reads a fixed CLS token and the junction is marked. SOP (ALBERT):
    label 1 = the two spans swapped. NSP (BERT): label 1 = B replaced by the second half of
    another window of the micro-batch. The sentence loss of each sequence weighs
    `sentence_weight · mask_prob · T` target tokens, a constant, so the sum stays exact under
    any micro-batch split."""

    name = "sop"
    token_cross_entropy = False  # MLM + sentence-order CE
    needs_sentence_head = True

    def __init__(self, vocab_size: int, seed: int = 0, **options: Any) -> None:
        super().__init__(vocab_size, seed, **options)
        self.sentence_weight = float(options.get("sentence_weight", 1.0))

    def _segments(self, x: torch.Tensor, g: torch.Generator):
        """(first span, second span, label) per row, before the pair layout."""
        B, L = x.shape
        cut = torch.randint(L // 4, 3 * L // 4 + 1, (B,), generator=g)  # (B,)
        label = torch.randint(0, 2, (B,), generator=g)  # (B,) 1 = swapped
        pairs = []
        for b in range(B):
            a, rest = x[b, : cut[b]], x[b, cut[b] :]
            pairs.append((rest, a) if label[b] else (a, rest))
        return pairs, label

    def _pair(self, x: torch.Tensor, g: torch.Generator):
        """(ids (B, T), segment types (B, T), labels (B,)) from windows x (B, T)."""
        if x.size(1) < 8:
            raise ConfigError(
                f"objective {self.name!r} needs windows of at least 8 tokens (got "
                f"{x.size(1)}): raise model.block_size"
            )
        spans, label = self._segments(x[:, : x.size(1) - 3], g)  # room for CLS and 2 SEP
        cls, sep = torch.tensor([BOS_ID]), torch.tensor([EOS_ID])
        rows, types = [], []
        for a, b in spans:
            rows.append(torch.cat([cls, a, sep, b, sep]))
            n0 = a.numel() + 2  # CLS, A, SEP
            types.append(torch.cat([torch.zeros(n0), torch.ones(b.numel() + 1)]).long())
        return torch.stack(rows).to(x.dtype), torch.stack(types), label

    def make_batch(self, x: torch.Tensor, y: torch.Tensor, step: int, micro: int) -> Batch:
        g = seeded_generator(self.seed, step, micro)
        pairs, types, label = self._pair(x, g)
        inputs, targets = self._mask(pairs, g)
        n = int((targets != IGNORE_INDEX).sum())
        t = {"x": inputs, "targets": targets, "token_type": types, "label": label}
        return Batch(t, n_targets=n, n_tokens=int(x.numel()))

    def forward(self, model: Any, batch: Batch) -> dict[str, Any]:
        t = batch.tensors
        # through the module's own forward, so a DDP/FSDP wrapper sees the call
        logits, sentence = model(t["x"], token_type=t["token_type"], sentence=True)
        return {"logits": logits, "sentence": sentence, "aux": moe_aux_loss(model)}

    def loss(self, out: dict[str, Any], batch: Batch):
        loss_sum, metrics = super().loss(out, batch)
        label = batch.tensors["label"]
        sent = F.cross_entropy(out["sentence"].float(), label, reduction="sum")
        T = batch.tensors["x"].size(1)
        loss_sum = loss_sum + self.sentence_weight * self.prob * T * sent
        metrics["sentence_correct"] = (out["sentence"].argmax(-1) == label).sum().detach()
        metrics["sentence_count"] = torch.tensor(label.numel())
        return loss_sum, metrics


class NextSentence(SentenceOrder):
    name = "nsp"

    def _segments(self, x: torch.Tensor, g: torch.Generator):
        B, L = x.shape
        cut = L // 2
        label = torch.randint(0, 2, (B,), generator=g)  # 1 = B is a random segment
        # another window's second half (a lone window: its own second half reversed)
        other = x.roll(1, dims=0)[:, cut:] if B > 1 else x[:, cut:].flip(1)
        second = torch.where(label[:, None].bool(), other, x[:, cut:])
        return list(zip(x[:, :cut], second, strict=True)), label
