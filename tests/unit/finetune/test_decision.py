"""Decision tuning (finetune/decision.py): the vectorised metrics equal scikit-learn's; the
binary search finds the best threshold an exhaustive scan finds; an already optimal argmax is
left alone; three classes improve on val and never get worse; saved offsets belong to one
checkpoint step."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from llmtrain.finetune.decision import Decision, scores, tune, tuned_decision
from llmtrain.objectives.classify import apply_offsets, classification_metrics


def _probs(logits):
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _biased_binary(n=600, seed=0):
    """2:1 imbalanced labels; the model's score separates them but favours the majority."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 2 / 3).astype(int)  # class 1 is the majority
    margin = np.where(y == 1, 1.0, -1.0) * 1.2 + rng.normal(0, 1, n) + 1.0  # +1: majority bias
    return y, _probs(np.stack([np.zeros(n), margin], 1))


@pytest.mark.parametrize("metric", ["macro_f1", "weighted_f1", "accuracy"])
def test_vectorised_scores_equal_scikit_learn(metric):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 200)
    preds = rng.integers(0, 3, (200, 7))
    preds[:, 0] = 0  # a class never predicted: F1 0, as sklearn's zero_division=0
    got = scores(y, preds, 3, metric)
    for m in range(preds.shape[1]):
        if metric == "accuracy":
            want = accuracy_score(y, preds[:, m])
        else:
            avg = metric.split("_")[0]
            want = f1_score(y, preds[:, m], average=avg, labels=[0, 1, 2], zero_division=0)
        assert got[m] == pytest.approx(want, abs=1e-12)


def test_binary_offset_is_the_best_threshold_of_an_exhaustive_scan():
    y, probs = _biased_binary()
    offsets, before, after = tune(y, probs, "macro_f1")
    assert offsets[0] == 0.0 and offsets[1] < 0  # the majority (1) is pushed back
    assert before == pytest.approx(f1_score(y, probs.argmax(1), average="macro"))
    assert after == pytest.approx(f1_score(y, apply_offsets(probs, offsets), average="macro"))
    p1 = probs[:, 1]
    best = max(f1_score(y, (p1 > t).astype(int), average="macro") for t in np.unique(p1))
    assert after == pytest.approx(best) and after > before + 0.02
    minority_recall = lambda pred: ((pred == 0) & (y == 0)).sum() / (y == 0).sum()  # noqa: E731
    assert minority_recall(apply_offsets(probs, offsets)) > minority_recall(probs.argmax(1))


def test_an_optimal_argmax_is_left_alone():
    y = np.array([0, 0, 1, 1, 1, 1])
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7], [0.1, 0.9]])
    offsets, before, after = tune(y, probs, "macro_f1")
    assert before == after == 1.0 and not offsets.any()


def test_three_classes_never_get_worse_and_fix_a_starved_class():
    rng = np.random.default_rng(3)
    n = 900
    y = rng.choice(3, n, p=[0.6, 0.3, 0.1])
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), y] += 2.0
    logits[:, 2] -= 2.0  # the rare class is almost never predicted
    probs = _probs(logits)
    offsets, before, after = tune(y, probs, "macro_f1")
    assert after > before + 0.05 and offsets[2] > 0
    assert after == pytest.approx(
        f1_score(y, apply_offsets(probs, offsets), average="macro", labels=[0, 1, 2])
    )
    m = classification_metrics(y.tolist(), probs, ["a", "b", "c"], offsets)
    assert m["macro_f1"] == pytest.approx(after)


def test_saved_offsets_belong_to_their_checkpoint(tmp_path):
    y, probs = _biased_binary(200)
    d = tuned_decision(y, probs, step=40, metric="macro_f1")
    d.save(tmp_path)
    assert Decision.load(tmp_path, 40) == d
    assert Decision.load(tmp_path, 80) is None  # tuned on another checkpoint: not applied
    assert Decision.load(tmp_path / "none", 40) is None
