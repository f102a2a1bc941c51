"""Causal language modelling (predict token t+1 from tokens <= t) and prefix LM.

The loss is the SUM of token losses (`token_loss`), so gradient accumulation can normalise by
the true token count of the whole optimizer step (averaging per-micro-batch means is wrong as
soon as micro-batches hold different numbers of tokens). `PrefixLM` (Raffel et al. 2020
§3.2.3): a random prefix of each window is attended bidirectionally and not predicted; the
rest is ordinary next-token prediction. Both report perplexity and bits per byte.
"""

from __future__ import annotations

from typing import Any

import torch

from llmtrain.models.moe import moe_aux_loss
from llmtrain.objectives.base import IGNORE_INDEX, Batch, Objective, Tally, seeded_generator


class CLM(Objective):
    name = "clm"
    architectures = ("decoder",)
    next_token = True
    fuses_loss = True
    train_predictions = False  # train reports the loss only; eval reads the argmax
    headline = ()  # the val line shows loss, ppl and bpb

    def make_batch(self, sample: Any, *, step: int, micro: int) -> Batch:
        x, y = sample  # (B, T) inputs and next-token targets
        return Batch(x, y, n_targets=int(y.numel()), n_tokens=int(y.numel()))

    def forward(self, model: Any, batch: Batch) -> dict[str, Any]:
        out = model(batch.inputs, head=self.lm_head(batch))  # (B, T, V) logits, or fused
        return {**self.lm_out(out), "aux": moe_aux_loss(model)}

    def loss(self, out: dict[str, Any], batch: Batch, *, train: bool = True):
        loss_sum = self._ce(out, batch, train)
        return self._with_aux(loss_sum, out, batch, train), {}

    def eval_step(self, out: dict[str, Any], batch: Batch, tally: Tally) -> None:
        """Only the accuracy: every target is scored, so their NLL is the eval loss that
        `evaluate` has already summed (`loss`, `n_targets`): no second cross-entropy."""
        tgt = self.at_head(batch, batch.targets)  # (B, T), or (n,) at a sparse head
        keep = tgt != IGNORE_INDEX
        tally.add("correct", ((self.predicted(out) == tgt) & keep).sum())
        tally.add("targets", keep.sum())

    def report(self, tally: Tally) -> dict[str, float]:
        res = super().report(tally)
        res["token_nll"] = tally.get("loss") / max(1.0, tally.get("n_targets"))
        return res


class PrefixLM(CLM):
    name = "prefix_lm"
    sparse_head = True  # the prefix is not predicted: the head runs on the rest only

    def make_batch(self, sample: Any, *, step: int, micro: int) -> Batch:
        x, y = sample
        B, T = x.shape
        g = seeded_generator(self.seed, step, micro)
        prefix = torch.randint(1, T, (B,), generator=g)  # (B,) in [1, T-1]
        y = y.clone()
        # position t predicts x[t+1]; positions t < prefix-1 would predict prefix tokens
        y[torch.arange(T)[None, :] < (prefix[:, None] - 1)] = IGNORE_INDEX
        n = int((y != IGNORE_INDEX).sum())
        return self.with_head_positions(Batch(x, y, n_targets=n, n_tokens=B * T, prefix_len=prefix))

    def forward(self, model: Any, batch: Batch) -> dict[str, Any]:
        out = model(
            batch.inputs,
            prefix_len=batch.prefix_len,
            positions=batch.predict,
            head=self.lm_head(batch),
        )
        return {**self.lm_out(out), "aux": moe_aux_loss(model)}
