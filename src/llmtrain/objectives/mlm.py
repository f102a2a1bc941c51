"""Masked LM (BERT) and the sentence-level tasks that ride on it (ALBERT SOP, BERT NSP).

Masking is dynamic (RoBERTa): a fresh mask every time a window is seen, drawn from a
generator that is a pure function of (seed, step, micro-batch) so resume is exact. Of the
selected positions (default 15 %), 80 % become MASK, 10 % a random token, 10 % stay. With
whole-word masking (`word_start` table from the tokenizer) whole words are selected.
Special ids 0..3 (PAD, UNK, BOS, EOS — document separators) are never selected.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from llmtrain.models.moe import moe_aux_loss
from llmtrain.objectives.base import (
    IGNORE_INDEX,
    N_SPECIAL,
    Batch,
    Objective,
    accuracy_counts,
    seeded_generator,
)


def word_starts_of(tokenizer: Any) -> torch.Tensor:
    """Bool (V,) table: token id begins a word. A token begins a word when its text starts
    with whitespace or punctuation, or is a CJK character (character-level whole-word
    masking for Chinese: a segmenter is not used, so each Han character is a word)."""
    V = tokenizer.vocab_size
    table = torch.ones(V, dtype=torch.bool)
    for i in range(N_SPECIAL, V):
        text = tokenizer.decode([i])
        if text and not (text[0].isspace() or not text[0].isalnum() or _is_cjk(text[0])):
            table[i] = False
    return table


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF


def mask_tokens(
    x: torch.Tensor,
    g: torch.Generator,
    *,
    prob: float,
    mask_id: int,
    vocab: int,
    mask_frac: float = 0.8,
    random_frac: float = 0.1,
    word_start: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) from ids x (B, T): targets hold the original id where selected."""
    B, T = x.shape
    maskable = x >= N_SPECIAL  # (B, T)
    if word_start is None:
        unit = torch.arange(B * T).view(B, T)  # every token its own unit
    else:  # a unit = a word: cumulative count of word starts along the row
        starts = word_start[x] | ~maskable
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
        self.word_start: torch.Tensor | None = options.get("word_start")

    def _mask(self, x: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return mask_tokens(
            x,
            g,
            prob=self.prob,
            mask_id=self.mask_id,
            vocab=self.tok_vocab,
            mask_frac=self.mask_frac,
            random_frac=self.random_frac,
            word_start=self.word_start,
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
    """MLM + a 2-way sentence task on position 0. Each window is cut at a random point into
    segments A, B. SOP (ALBERT): label 1 = the two segments swapped. NSP (BERT): label 1 = B
    replaced by the second half of another window of the micro-batch. The sentence loss of
    each sequence weighs `sentence_weight · mask_prob · T` target tokens, a constant, so the
    sum stays exact under any micro-batch split."""

    name = "sop"
    needs_sentence_head = True

    def __init__(self, vocab_size: int, seed: int = 0, **options: Any) -> None:
        super().__init__(vocab_size, seed, **options)
        self.sentence_weight = float(options.get("sentence_weight", 1.0))

    def _pair(self, x, g) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, T = x.shape
        cut = torch.randint(T // 4, 3 * T // 4 + 1, (B,), generator=g)  # (B,)
        label = torch.randint(0, 2, (B,), generator=g)  # (B,)
        rows, types = [], []
        for b in range(B):
            a, rest = x[b, : cut[b]], x[b, cut[b] :]
            if label[b]:
                a, rest = rest, a  # swapped order
            rows.append(torch.cat([a, rest]))
            types.append(torch.cat([torch.zeros(len(a)), torch.ones(len(rest))]).long())
        return torch.stack(rows), torch.stack(types), label

    def make_batch(self, x: torch.Tensor, y: torch.Tensor, step: int, micro: int) -> Batch:
        g = seeded_generator(self.seed, step, micro)
        pairs, types, label = self._pair(x, g)
        inputs, targets = self._mask(pairs, g)
        n = int((targets != IGNORE_INDEX).sum())
        t = {"x": inputs, "targets": targets, "token_type": types, "label": label}
        return Batch(t, n_targets=n, n_tokens=int(x.numel()))

    def forward(self, model: Any, batch: Batch) -> dict[str, Any]:
        t = batch.tensors
        hidden = model.forward_hidden(t["x"], token_type=t["token_type"])
        return {
            "logits": model.logits(hidden),
            "sentence": model.sentence_logits(hidden),
            "aux": moe_aux_loss(model),
        }

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

    def _pair(self, x, g):
        B, T = x.shape
        cut = T // 2
        label = torch.randint(0, 2, (B,), generator=g)  # 1 = B is a random segment
        # another window's second half (a lone window: its own second half reversed)
        other = x.roll(1, dims=0)[:, cut:] if B > 1 else x[:, cut:].flip(1)
        second = torch.where(label[:, None].bool(), other, x[:, cut:])
        types = torch.cat([torch.zeros(B, cut), torch.ones(B, T - cut)], dim=1).long()
        return torch.cat([x[:, :cut], second], dim=1), types, label
