"""Classification metrics through scikit-learn: accuracy, precision / recall / F1 per class,
macro and weighted averages, the confusion matrix, ROC-AUC for two classes; and the
predictions (`predict_probs`) they are computed from."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def predict_probs(
    model: nn.Module,
    source,
    objective,
    batch_size: int,
    device: torch.device | str = "cpu",
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> tuple[np.ndarray, float]:
    """Class probabilities (N, C) of every example of `source` in order, and the mean loss
    over the labelled ones (nan when none is labelled)."""
    was = model.training
    model.eval()
    probs, loss, n = [], 0.0, 0
    for i in range(0, len(source), batch_size):
        batch = objective.make_batch(source.batch(range(i, min(i + batch_size, len(source)))))
        batch = batch.to(device)
        with autocast():
            out = objective.forward(model, batch)
        logits = out["logits"].float()
        probs.append(torch.softmax(logits, -1).cpu().numpy())
        labels = batch.tensors["labels"]
        if bool((labels >= 0).all()):
            loss += float(objective.loss(out, batch)[0])
            n += labels.numel()
    model.train(was)
    return np.concatenate(probs), (loss / n if n else float("nan"))


def classification_metrics(
    y_true: Sequence[int], probs: np.ndarray, names: Sequence[str]
) -> dict[str, Any]:
    """accuracy, macro_/weighted_ precision/recall/f1, per_class {name: {precision, recall,
    f1, support}}, confusion (rows = true, columns = predicted), roc_auc (two classes)."""
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    y = np.asarray(y_true)
    pred = probs.argmax(1)
    labels = list(range(len(names)))
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    out: dict[str, Any] = {"accuracy": float(accuracy_score(y, pred))}
    for avg in ("macro", "weighted"):
        ap, ar, af, _ = precision_recall_fscore_support(
            y, pred, labels=labels, average=avg, zero_division=0
        )
        out.update({f"{avg}_precision": float(ap), f"{avg}_recall": float(ar), f"{avg}_f1": float(af)})
    out["per_class"] = {
        n: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, n in enumerate(names)
    }
    out["confusion"] = confusion_matrix(y, pred, labels=labels).tolist()
    if len(names) == 2 and len(set(y.tolist())) == 2:
        out["roc_auc"] = float(roc_auc_score(y, probs[:, 1]))
    out["examples"] = int(len(y))
    return out


def flat_metrics(prefix: str, m: dict[str, Any]) -> dict[str, float]:
    """The scalar metrics of `classification_metrics` as `prefix_name` keys (metrics.jsonl),
    per-class recall/F1 included (`val_recall_<label>`)."""
    out = {f"{prefix}_{k}": v for k, v in m.items() if isinstance(v, float)}
    for name, pc in m.get("per_class", {}).items():
        out[f"{prefix}_recall_{name}"] = pc["recall"]
        out[f"{prefix}_f1_{name}"] = pc["f1"]
    return out
