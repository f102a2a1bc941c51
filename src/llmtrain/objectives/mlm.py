"""Masked LM (BERT) and the sentence-level tasks that ride on it (ALBERT SOP, BERT NSP).

Masking is dynamic (RoBERTa): a fresh mask every time a window is seen, drawn from a
generator that is a pure function of (seed, step, micro-batch) so resume is exact. Of the
selected positions (default 15 %), 80 % become MASK, 10 % a random token, 10 % stay. With
whole-word masking whole words are selected: word starts come from the tokenizer's pieces
(`llmtrain.tokenizer.words`), and for Chinese from a segmenter (jieba) run on each window.
Special ids 0..3 (PAD, UNK, BOS, EOS — document separators) are never selected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from llmtrain.errors import ConfigError
from llmtrain.models.moe import moe_aux_loss
from llmtrain.objectives.base import (
    IGNORE_INDEX,
    N_SPECIAL,
    Batch,
    Objective,
    Tally,
    accuracy_counts,
    seeded_generator,
)
from llmtrain.tokenizer.base import BOS_ID, EOS_ID  # CLS and SEP of a sentence pair

if TYPE_CHECKING:
    from llmtrain.objectives.config import ObjectiveConfig


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
    sparse_head = True  # the head (and its transform) runs at the masked positions only
    fuses_loss = True

    def __init__(self, vocab_size: int, options: ObjectiveConfig, **kw: Any) -> None:
        super().__init__(vocab_size, options, **kw)
        self.prob = float(options.mask_prob)
        self.mask_frac = float(options.mask_token_frac)
        self.random_frac = float(options.random_token_frac)
        # whole words: `self.words` (a tokenizer.words.WordBoundaries), or a bare (V,) bool
        # table of word-start ids set as `word_start`
        self.word_start: torch.Tensor | None = None

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

    def make_batch(self, sample: Any, *, step: int, micro: int) -> Batch:
        x = sample[0]  # token windows: (x, y); only the inputs are masked
        inputs, targets = self._mask(x, seeded_generator(self.seed, step, micro))
        n = int((targets != IGNORE_INDEX).sum())
        return self.with_head_positions(
            Batch(inputs, targets, n_targets=n, n_tokens=int(x.numel()))
        )

    def forward(self, model: Any, batch: Batch) -> dict[str, Any]:
        # (n, V) logits at the masked tokens, or the fused head's loss there
        out = model(batch.inputs, positions=batch.predict, head=self.lm_head(batch))
        return {**self.lm_out(out), "aux": moe_aux_loss(model)}

    def loss(self, out: dict[str, Any], batch: Batch, *, train: bool = True):
        loss_sum = self._with_aux(self._ce(out, batch, train), out, batch, train)
        return loss_sum, accuracy_counts(self.predicted(out), self.at_head(batch, batch.targets))


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
    needs_sentence_head = True
    headline = ("sentence_acc", "token_acc")

    def __init__(self, vocab_size: int, options: ObjectiveConfig, **kw: Any) -> None:
        super().__init__(vocab_size, options, **kw)
        self.sentence_weight = float(options.sentence_weight)

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

    def make_batch(self, sample: Any, *, step: int, micro: int) -> Batch:
        x = sample[0]  # token windows: (x, y)
        g = seeded_generator(self.seed, step, micro)
        pairs, types, label = self._pair(x, g)
        inputs, targets = self._mask(pairs, g)
        n = int((targets != IGNORE_INDEX).sum())
        return self.with_head_positions(
            Batch(
                inputs,
                targets,
                n_targets=n,
                n_tokens=int(x.numel()),
                token_type=types,
                labels=label,
            )
        )

    def forward(self, model: Any, batch: Batch) -> dict[str, Any]:
        # through the module's own forward, so a DDP/FSDP wrapper sees the call
        lm, sentence = model(
            batch.inputs,
            token_type=batch.token_type,
            sentence=True,
            positions=batch.predict,
            head=self.lm_head(batch),
        )
        return {**self.lm_out(lm), "sentence": sentence, "aux": moe_aux_loss(model)}

    def loss(self, out: dict[str, Any], batch: Batch, *, train: bool = True):
        loss_sum, metrics = super().loss(out, batch, train=train)
        label = batch.labels
        sent = F.cross_entropy(out["sentence"].float(), label, reduction="sum")
        T = batch.inputs.size(1)
        loss_sum = loss_sum + self.sentence_weight * self.prob * T * sent
        metrics["sentence_correct"] = (out["sentence"].argmax(-1) == label).sum().detach()
        metrics["sentence_count"] = torch.tensor(label.numel())
        return loss_sum, metrics

    def metrics(self, totals: dict[str, Any]) -> dict[str, float]:
        out = super().metrics(totals)
        if int(totals.get("sentence_count", 0)):
            out["sentence_acc"] = float(totals["sentence_correct"]) / int(totals["sentence_count"])
        return out

    def eval_step(self, out: dict[str, Any], batch: Batch, tally: Tally) -> None:
        super().eval_step(out, batch, tally)
        label = batch.labels
        tally.add("sent_correct", (out["sentence"].argmax(-1) == label).sum())
        tally.add("sent_pos", label.sum())
        tally.add("sent_count", label.numel())

    def report(self, tally: Tally) -> dict[str, float]:
        """+ `sentence_acc`, `sentence_majority` (the share of the commoner label: the
        accuracy to beat) and `sentences`."""
        res = super().report(tally)
        count, pos = max(1.0, tally.get("sent_count")), tally.get("sent_pos")
        res["sentence_acc"] = tally.get("sent_correct") / count
        res["sentence_majority"] = max(pos, count - pos) / count
        res["sentences"] = int(tally.get("sent_count"))
        return res


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
