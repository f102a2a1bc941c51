"""Supervised fine-tuning (instruction / chat): next-token loss on the assistant tokens only.

The data source already marks every non-assistant target (system, user, prompt, padding) as
IGNORE_INDEX, so the loss is the SUM over assistant tokens and `n_targets` their count: the
trainer divides by the step's assistant-token count (the exact accumulation rule), and masked
tokens get no gradient at all. Eval reports the assistant tokens' NLL and accuracy.
"""

from __future__ import annotations

from typing import Any

import torch

from llmtrain.models.moe import moe_aux_loss
from llmtrain.objectives.base import IGNORE_INDEX, Batch, Objective, accuracy_counts


class SFT(Objective):
    """Sample: `{"x": (B, T) right-padded ids, "y": (B, T) next-token targets}`."""

    name = "sft"
    architectures = ("decoder",)
    next_token = True  # ppl of the assistant tokens (no bits per byte: no byte count)
    sparse_head = True  # the LM head runs on the assistant tokens only (not prompt, padding)
    fuses_loss = True

    def make_batch(
        self, sample: dict[str, torch.Tensor], *, step: int = 0, micro: int = 0
    ) -> Batch:
        x, y = sample["x"], sample["y"]
        n = int((y != IGNORE_INDEX).sum())
        return self.with_head_positions(Batch(x, y, n_targets=n, n_tokens=int(x.numel())))

    def forward(self, model: Any, batch: Batch) -> dict[str, Any]:
        # (n, V) logits at the assistant tokens, or the fused head's loss there
        out = model(batch.inputs, positions=batch.predict, head=self.lm_head(batch))
        return {**self.lm_out(out), "aux": moe_aux_loss(model)}

    def loss(self, out: dict[str, Any], batch: Batch, *, train: bool = True):
        loss_sum = self._ce(out, batch, train)
        return self._with_aux(loss_sum, out, batch, train), accuracy_counts(
            self.predicted(out), self.at_head(batch, batch.targets)
        )
