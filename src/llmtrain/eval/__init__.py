"""Evaluation: loss, perplexity and bits per byte on a prepared split."""

from llmtrain.eval.evaluate import bits_per_byte, evaluate_split, mean_loss

__all__ = ["bits_per_byte", "evaluate_split", "mean_loss"]
