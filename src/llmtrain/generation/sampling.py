"""Choosing the next token from logits: temperature, top-k and top-p (nucleus) sampling.

`sample_next_token(logits, temperature, top_k, top_p, generator)`; temperature 0 is greedy.
Filters apply in the order top-k, then top-p, on temperature-scaled logits (as HF does).
"""

from __future__ import annotations

import torch

from llmtrain.errors import ConfigError


def check_sampling_args(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise ConfigError naming the bad sampling argument."""
    if not temperature >= 0.0:  # also rejects NaN
        raise ConfigError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top_k must be >= 1 or None, got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ConfigError(f"top_p must be in (0, 1] or None, got {top_p}")


def _top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    kth = torch.topk(logits, min(k, logits.size(-1)), dim=-1).values[:, -1:]  # (B, 1)
    return logits.masked_fill(logits < kth, float("-inf"))  # (B, V)


def _top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (B, V)
    probs = torch.softmax(sorted_logits, dim=-1)  # (B, V)
    # Probability mass strictly before each token: a token is dropped once the tokens ahead
    # of it already reach p, so the kept set is the smallest with mass >= p, and the top
    # token (mass before it = 0 < p) always survives.
    mass_before = torch.cumsum(probs, dim=-1) - probs  # (B, V)
    drop_sorted = mass_before >= p  # (B, V)
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # (B, V) back in vocab order
    return logits.masked_fill(drop, float("-inf"))


def sample_next_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Next token ids (B,) from logits (B, V)."""
    check_sampling_args(temperature, top_k, top_p)
    if temperature == 0.0:
        return logits.argmax(dim=-1)  # (B,)
    logits = logits.float() / temperature  # (B, V); fp32 so softmax is exact enough
    if top_k is not None:
        logits = _top_k_filter(logits, top_k)
    if top_p is not None and top_p < 1.0:
        logits = _top_p_filter(logits, top_p)
    probs = torch.softmax(logits, dim=-1)  # (B, V)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)  # (B,)
