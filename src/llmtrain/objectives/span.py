"""T5 span corruption (Raffel et al. 2020 §3.1.4) for the encoder-decoder.

Of a window of L tokens, round(L · noise_density) noise tokens form
n = round(noise / mean_span) spans at random positions; the input keeps the other tokens with
each span replaced by one sentinel and ends with EOS, the target lists sentinel + span tokens
for each span and ends with EOS. Both lengths are fixed functions of L (`span_lengths`), so
packed windows need no padding: input L - noise + n + 1, target noise + n + 1.
Sentinel i has id V_tok + 1 + i (after MASK = V_tok); the decoder starts from PAD (id 0), as T5.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from llmtrain.models.moe import moe_aux_loss
from llmtrain.objectives.base import (
    IGNORE_INDEX,
    Batch,
    Objective,
    accuracy_counts,
    seeded_generator,
)

if TYPE_CHECKING:
    from llmtrain.objectives.config import ObjectiveConfig

EOS_ID, DECODER_START_ID = 3, 0


def span_lengths(length: int, density: float, mean_span: float) -> tuple[int, int, int, int]:
    """(noise tokens, spans, input length, target length) for a window of `length` tokens
    (the T5 reference's `random_spans_noise_mask` counts, EOS included)."""
    noise = min(max(round(length * density), 1), length - 1)
    spans = max(round(noise / mean_span), 1)
    return noise, spans, length - noise + spans + 1, noise + spans + 1


def _segments(total: int, n: int, g: torch.Generator) -> torch.Tensor:
    """Random split of `total` items into `n` non-empty segments (lengths)."""
    cuts = (torch.randperm(total - 1, generator=g)[: n - 1] + 1).sort().values
    edges = torch.cat([torch.tensor([0]), cuts, torch.tensor([total])])
    return edges.diff()


def noise_mask(length: int, density: float, mean_span: float, g: torch.Generator) -> torch.Tensor:
    noise, spans, _, _ = span_lengths(length, density, mean_span)
    noise_len = _segments(noise, spans, g)
    keep_len = _segments(length - noise, spans, g)
    flags = torch.stack([torch.zeros(spans), torch.ones(spans)], 1).flatten().bool()
    lens = torch.stack([keep_len, noise_len], 1).flatten()
    return flags.repeat_interleave(lens)  # (length,) keep span, noise span, keep, noise, ...


class SpanCorruption(Objective):
    name = "span"
    architectures = ("encoder_decoder",)
    fuses_loss = True  # the decoder's head, fused with the loss (objectives/fused_loss.py)

    def __init__(self, vocab_size: int, options: ObjectiveConfig, **kw: Any) -> None:
        super().__init__(vocab_size, options, **kw)
        self.density = float(options.noise_density)
        self.mean_span = float(options.mean_span)
        self.extra_vocab = 1 + span_lengths(self.block_size, self.density, self.mean_span)[1]

    def sentinel(self, i: int) -> int:
        return self.tok_vocab + 1 + i

    def corrupt(self, row: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        noise = noise_mask(row.numel(), self.density, self.mean_span, g)
        starts = noise & ~torch.cat([torch.tensor([False]), noise[:-1]])  # first of each span
        span_id = starts.long().cumsum(0) - 1  # (L,) index of the span a token is in
        sent = self.tok_vocab + 1 + span_id
        eos = torch.tensor([EOS_ID])
        # input: non-noise tokens, and each span's first position becomes its sentinel
        inp = torch.where(starts, sent, row)[~noise | starts]
        # target: each span's sentinel followed by the span's tokens
        tgt = torch.stack([sent, row], 1)  # (L, 2): candidate sentinel then token
        pick = torch.stack([starts, noise], 1)  # sentinel only at span starts
        tgt = tgt[pick]
        return torch.cat([inp, eos]), torch.cat([tgt, eos])

    def make_batch(self, sample: Any, *, step: int, micro: int) -> Batch:
        x = sample[0]  # token windows: (x, y)
        g = seeded_generator(self.seed, step, micro)
        pairs = [self.corrupt(row, g) for row in x]
        src = torch.stack([p[0] for p in pairs])  # (B, S)
        tgt = torch.stack([p[1] for p in pairs])  # (B, U)
        dec_in = torch.cat([torch.full((x.size(0), 1), DECODER_START_ID), tgt[:, :-1]], 1)
        n = int(tgt.numel())
        return Batch(src, tgt, n_targets=n, n_tokens=int(x.numel()), decoder_inputs=dec_in)

    def forward(self, model: Any, batch: Batch) -> dict[str, Any]:
        # (B, U, V) logits, or the head fused with the loss (every target position has one)
        out = model(batch.inputs, batch.decoder_inputs, head=self.lm_head(batch))
        return {**self.lm_out(out), "aux": moe_aux_loss(model)}

    def loss(self, out: dict[str, Any], batch: Batch, *, train: bool = True):
        loss_sum = self._with_aux(self._ce(out, batch, train), out, batch, train)
        return loss_sum, accuracy_counts(self.predicted(out), batch.targets)

    def scored_targets(self, batch: Batch) -> torch.Tensor:
        """The corrupted span tokens: sentinels and the final EOS are structure, predictable
        from position alone, so they are left out of the task metrics."""
        targets = batch.targets.clone()
        targets[targets >= self.tok_vocab] = IGNORE_INDEX  # sentinels
        targets[:, -1] = IGNORE_INDEX  # the appended EOS
        return targets
