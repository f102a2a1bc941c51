"""Decision tuning of a classifier ("threshold moving"): per-class offsets added to the
log-probabilities before the argmax, chosen on the val set to maximise a metric (macro-F1 by
default). For two classes it is the probability threshold of the second class; for more, a
coordinate ascent over the offsets (class 0 stays at 0: only differences matter).

Why: a model trained on imbalanced data ranks well (ROC-AUC) but its argmax favours the
majority class; moving the threshold on held-out data is the standard cure beside loss
weights and resampling (Provost 2000; scikit-learn's `TunedThresholdClassifierCV`, which is
binary-only and wraps an estimator it refits — here the scores are a checkpoint's, so the
search runs on them directly, vectorised over every candidate cut point).

The offsets are saved as decision.json beside labels.json, with the step of the checkpoint
they were tuned on; `eval`, `predict` and the report apply them to that checkpoint only.
Probabilities written by `predict` stay the model's own.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from llmtrain.utils.io import atomic_write_json

DECISION_FILE = "decision.json"
MAX_CANDIDATES = 512  # cut points tried per class and round (quantiles beyond that)
ROUNDS = 5  # coordinate-ascent passes (two classes: one pass is exact)


@dataclass
class Decision:
    offsets: list[float]  # one per class, added to log p before the argmax
    step: int  # the checkpoint step they were tuned on
    metric: str  # what they maximise on val
    val_before: float  # that metric with the plain argmax
    val_after: float  # and with the offsets

    def save(self, run_dir: str | Path) -> None:
        atomic_write_json(Path(run_dir) / DECISION_FILE, asdict(self))

    @classmethod
    def load(cls, run_dir: str | Path, step: int) -> Decision | None:
        """The run's tuned decision when it belongs to checkpoint `step`, else None."""
        path = Path(run_dir) / DECISION_FILE
        if not path.is_file():
            return None
        d = cls(**json.loads(path.read_text(encoding="utf-8")))
        return d if d.step == step else None


def scores(y: np.ndarray, preds: np.ndarray, k: int, metric: str) -> np.ndarray:
    """`metric` of each column of `preds` (N, M) against `y` (N,): macro_f1, weighted_f1
    or accuracy, vectorised over the M candidate decisions."""
    if metric == "accuracy":
        return (preds == y[:, None]).mean(0)
    f1 = np.zeros((k, preds.shape[1]))
    support = np.bincount(y, minlength=k).astype(np.float64)
    for c in range(k):
        pred_c = preds == c
        tp = (pred_c & (y == c)[:, None]).sum(0)
        denom = pred_c.sum(0) + support[c]
        f1[c] = np.where(denom > 0, 2.0 * tp / np.maximum(denom, 1), 0.0)
    if metric == "weighted_f1":
        return (support[:, None] * f1).sum(0) / max(1.0, support.sum())
    return f1.mean(0)


def tune(y, probs: np.ndarray, metric: str = "macro_f1") -> tuple[np.ndarray, float, float]:
    """(offsets, val metric before, after): for each class c >= 1 in turn, every point
    where an example's prediction flips to or from c is a candidate offset (the midpoints
    between them, and beyond both ends); the best is kept, ties going to the smallest
    |offset| (the plain argmax when nothing beats it)."""
    y = np.asarray(y, dtype=np.int64)
    n, k = probs.shape
    logp = np.log(np.clip(probs.astype(np.float64), 1e-30, None))
    b = np.zeros(k)
    before = float(scores(y, logp.argmax(1)[:, None], k, metric)[0])
    best = before
    for _ in range(ROUNDS if k > 2 else 1):
        moved = False
        for c in range(1, k):
            other = np.delete(logp + b, c, axis=1)
            others_best = other.max(1)
            flip = np.unique(others_best - logp[:, c])  # c wins iff b_c > flip_i
            if flip.size > MAX_CANDIDATES:
                flip = np.quantile(flip, np.linspace(0, 1, MAX_CANDIDATES))
            cands = np.concatenate([[flip[0] - 1.0], (flip[1:] + flip[:-1]) / 2, [flip[-1] + 1.0], [b[c]]])  # fmt: skip
            other_arg = np.delete(np.arange(k), c)[other.argmax(1)]
            wins = (logp[:, c][:, None] + cands[None, :]) > others_best[:, None]
            preds = np.where(wins, c, other_arg[:, None])
            s = scores(y, preds, k, metric)
            top = s.max()
            pick = cands[np.flatnonzero(s >= top - 1e-12)]
            new = float(pick[np.argmin(np.abs(pick))])
            if top > best + 1e-12 or (top >= best - 1e-12 and abs(new) < abs(b[c]) - 1e-12):
                moved = moved or new != b[c]
                b[c], best = new, float(top)
        if not moved:
            break
    return b, before, best


def tuned_decision(y, probs: np.ndarray, step: int, metric: str) -> Decision:
    offsets, before, after = tune(y, probs, metric)
    return Decision([float(o) for o in offsets], int(step), metric, before, after)


def describe(decision: Decision, names: list[str]) -> str:
    shift = ", ".join(f"{n} {o:+.3f}" for n, o in zip(names, decision.offsets))
    return (
        f"decision tuned on val for {decision.metric}: log-probability offsets {shift}; "
        f"val {decision.metric} {decision.val_before:.4f} -> {decision.val_after:.4f}"
    )
