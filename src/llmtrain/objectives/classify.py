"""Sequence classification: one label per (right-padded) example, the loss a SUM over the
micro-batch's examples so the trainer's division by the step's example count keeps
gradient accumulation exact.

Class imbalance: per-class weights (`class_weights`, e.g. "balanced" n / (k · n_c)) scale each
example's loss; focal loss (Lin et al. 2017) multiplies it by (1 - p_true)^gamma, so examples
the model already gets right count less. The model is a `models.heads.SequenceClassifier`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from llmtrain.objectives.base import IGNORE_INDEX, Batch, Objective, Tally

if TYPE_CHECKING:
    from llmtrain.objectives.config import ObjectiveConfig


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
    """Batch: `inputs` (B, T) right-padded ids, `attention_mask` (B, T) real tokens, optional
    `token_type`, `labels` (B,). Eval keeps every probability, so `report` gives accuracy,
    precision / recall / F1 per class and averaged, the confusion matrix and ROC-AUC."""

    name = "classify"
    architectures = ("decoder", "encoder")
    headline = ("accuracy", "macro_f1")

    def __init__(
        self,
        n_classes: int,
        options: ObjectiveConfig | None = None,
        *,
        class_weights: Sequence[float] | None = None,
        focal_gamma: float = 0.0,
        names: Sequence[str] = (),
        seed: int = 0,
        offsets: Sequence[float] | None = None,
    ) -> None:
        from llmtrain.objectives.config import ObjectiveConfig

        super().__init__(0, options or ObjectiveConfig(), seed=seed)
        self.n_classes = n_classes
        self.names = list(names) or [str(i) for i in range(n_classes)]
        self.weights = None if class_weights is None else torch.tensor(list(class_weights))
        self.gamma = focal_gamma
        # a tuned decision (finetune/decision.py): log-probability offsets before the argmax
        # of the reported metrics; None = the plain argmax
        self.offsets = None if offsets is None else np.asarray(offsets, dtype=np.float64)

    def make_batch(
        self, sample: dict[str, torch.Tensor], *, step: int = 0, micro: int = 0
    ) -> Batch:
        ids, lengths = sample["ids"], sample["lengths"]
        mask = torch.arange(ids.size(1))[None, :] < lengths[:, None]  # (B, T)
        return Batch(
            ids,
            torch.full_like(ids, IGNORE_INDEX),  # no token targets
            n_targets=int(ids.size(0)),  # the loss is a mean over the step's examples
            n_tokens=int(lengths.sum()),
            attention_mask=mask,
            token_type=sample.get("token_type"),
            labels=sample["labels"],
            predict=torch.zeros(0, dtype=torch.long),  # no LM head: the pooled classifier
        )

    def forward(self, model: Any, batch: Batch) -> dict[str, Any]:
        lengths = batch.attention_mask.sum(1)  # (B,)
        return {"logits": model(batch.inputs, lengths, batch.token_type)}  # (B, C)

    def loss(self, out: dict[str, Any], batch: Batch, *, train: bool = True):
        logits, labels = out["logits"], batch.labels
        weights = self.weights if train else None
        loss_sum = classification_loss(logits, labels, weights, self.gamma if train else 0.0)
        correct = (logits.argmax(-1) == labels).sum().detach()
        return loss_sum, {"cls_correct": correct, "cls_count": torch.tensor(labels.numel())}

    def metrics(self, totals: dict[str, Any]) -> dict[str, float]:
        n = int(totals.get("cls_count", 0))
        return {"accuracy": float(totals["cls_correct"]) / n} if n else {}

    def eval_step(self, out: dict[str, Any], batch: Batch, tally: Tally) -> None:
        tally.keep("probs", torch.softmax(out["logits"].float(), -1))  # (B, C) flattened
        tally.keep("labels", batch.labels)

    def report(self, tally: Tally) -> dict[str, Any]:
        probs = tally.cat("probs").view(-1, self.n_classes).numpy()
        labels = tally.cat("labels").tolist()
        return classification_metrics(labels, probs, self.names, self.offsets)


def apply_offsets(probs: np.ndarray, offsets: np.ndarray | None) -> np.ndarray:
    """Predicted class ids of (N, C) probabilities, shifted by `offsets` in log space."""
    if offsets is None:
        return probs.argmax(1)
    return (np.log(np.clip(probs, 1e-30, None)) + offsets).argmax(1)


def classification_metrics(
    y_true: Sequence[int],
    probs: np.ndarray,
    names: Sequence[str],
    offsets: np.ndarray | Sequence[float] | None = None,
) -> dict[str, Any]:
    """accuracy, macro_/weighted_ precision/recall/f1, per_class {name: {precision, recall,
    f1, support}}, confusion (rows = true, columns = predicted), roc_auc (two classes).
    Predictions are the argmax of the probabilities, shifted by a tuned decision's `offsets`
    (log space) when given; ROC-AUC ranks the probabilities themselves."""
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    y = np.asarray(y_true)
    pred = apply_offsets(probs, None if offsets is None else np.asarray(offsets))
    labels = list(range(len(names)))
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    out: dict[str, Any] = {"accuracy": float(accuracy_score(y, pred))}
    for avg in ("macro", "weighted"):
        ap, ar, af, _ = precision_recall_fscore_support(
            y, pred, labels=labels, average=avg, zero_division=0
        )
        out.update(
            {f"{avg}_precision": float(ap), f"{avg}_recall": float(ar), f"{avg}_f1": float(af)}
        )
    out["per_class"] = {
        n: {
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(s[i]),
        }
        for i, n in enumerate(names)
    }
    out["confusion"] = confusion_matrix(y, pred, labels=labels).tolist()
    if len(names) == 2 and len(set(y.tolist())) == 2:
        out["roc_auc"] = float(roc_auc_score(y, probs[:, 1]))
    out["examples"] = int(len(y))
    return out
