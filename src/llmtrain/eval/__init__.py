"""Evaluation: ONE path, `evaluate(model, objective, source, ...)`, for the trainer's val evals,
`llmtrain eval` and the benches — the objective's own loss and metrics, perplexity and bits
per byte where defined, and (`target_unigram`) the unigram baseline on the same targets."""

from llmtrain.eval.evaluate import bits_per_byte, evaluate, spread, target_unigram

__all__ = ["bits_per_byte", "evaluate", "spread", "target_unigram"]
