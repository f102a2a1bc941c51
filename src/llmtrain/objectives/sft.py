"""Supervised fine-tuning (instruction / chat): next-token loss on the assistant tokens only.

The data source already marks every non-assistant target (system, user, prompt, padding) as
IGNORE_INDEX, so the loss is the SUM over assistant tokens and `n_targets` their count: the
trainer divides by the step's assistant-token count (the exact accumulation rule), and masked
tokens get no gradient at all.
"""

from __future__ import annotations

from typing import Any

import torch

from llmtrain.objectives.base import IGNORE_INDEX, Batch, Objective, accuracy_counts


class SFT(Objective):
    name = "sft"
    architectures = ("decoder",)

    def __init__(self, seed: int = 0, label_smoothing: float = 0.0) -> None:
        super().__init__(0, seed, label_smoothing=label_smoothing)

    def make_batch(self, sample: dict[str, torch.Tensor], step: int = 0, micro: int = 0) -> Batch:
        y = sample["y"]
        n = int((y != IGNORE_INDEX).sum())
        return Batch(dict(sample), n_targets=n, n_tokens=int(sample["x"].numel()))

    def forward(self, model: Any, batch: Batch) -> dict[str, Any]:
        return {"logits": model(batch.tensors["x"])}  # (B, T, V)

    def loss(self, out: dict[str, Any], batch: Batch):
        logits, y = out["logits"], batch.tensors["y"]
        return self._ce(logits, y), accuracy_counts(logits, y)
