"""Sequence classification: one label per (right-padded) example, the loss a SUM over the
micro-batch's examples so the trainer's division by the step's example count keeps
gradient accumulation exact.

Class imbalance: per-class weights (`class_weights`, e.g. "balanced" n / (k · n_c)) scale each
example's loss; focal loss (Lin et al. 2017) multiplies it by (1 - p_true)^gamma, so examples
the model already gets right count less. The model is a `models.heads.SequenceClassifier`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from llmtrain.objectives.base import Batch, Objective


def classification_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None = None,
    gamma: float = 0.0,
) -> torch.Tensor:
    """SUM over examples of w[y] · (1 - p_y)^gamma · (-log p_y); logits (B, C), labels (B,)."""
    logp = F.log_softmax(logits.float(), dim=-1)  # (B, C) fp32
    logp_y = logp.gather(1, labels[:, None]).squeeze(1)  # (B,)
    per = -logp_y
    if gamma:
        per = per * (1.0 - logp_y.exp()).clamp_min(0).pow(gamma)
    if weights is not None:
        per = per * weights.to(per.device)[labels]
    return per.sum()


class Classify(Objective):
    name = "classify"
    architectures = ("decoder", "encoder")
    token_cross_entropy = False  # a per-example loss: no perplexity, no bits per byte

    def __init__(
        self,
        n_classes: int,
        class_weights: Sequence[float] | None = None,
        focal_gamma: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(0, seed)
        self.n_classes = n_classes
        self.weights = None if class_weights is None else torch.tensor(list(class_weights))
        self.gamma = focal_gamma

    def make_batch(self, sample: dict[str, torch.Tensor], step: int = 0, micro: int = 0) -> Batch:
        ids = sample["ids"]
        return Batch(dict(sample), n_targets=int(ids.size(0)), n_tokens=int(sample["lengths"].sum()))

    def forward(self, model: Any, batch: Batch) -> dict[str, Any]:
        t = batch.tensors
        return {"logits": model(t["ids"], t["lengths"], t.get("token_type"))}  # (B, C)

    def loss(self, out: dict[str, Any], batch: Batch):
        logits, labels = out["logits"], batch.tensors["labels"]
        loss_sum = classification_loss(logits, labels, self.weights, self.gamma)
        correct = (logits.argmax(-1) == labels).sum().detach()
        return loss_sum, {"cls_correct": correct, "cls_count": torch.tensor(labels.numel())}
