"""Evaluation: loss, perplexity and bits per byte on a prepared split; any objective's loss,
task metrics and unigram baseline on fixed windows (`evaluate_objective`)."""

from llmtrain.eval.evaluate import bits_per_byte, evaluate_split, mean_loss
from llmtrain.eval.objective import evaluate_objective, scored_targets, target_unigram

__all__ = [
    "bits_per_byte",
    "evaluate_objective",
    "evaluate_split",
    "mean_loss",
    "scored_targets",
    "target_unigram",
]
