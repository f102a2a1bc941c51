"""sample_next_token: greedy, top-k, top-p, seeds and argument validation."""

from __future__ import annotations

import pytest
import torch

from llmtrain.errors import ConfigError
from llmtrain.generation import sample_next_token


def logits_batch() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(4, 50) * 3


def test_temperature_zero_is_greedy():
    logits = logits_batch()
    assert torch.equal(sample_next_token(logits, temperature=0.0), logits.argmax(-1))


def test_top_k_one_and_tiny_top_p_equal_greedy():
    logits = logits_batch()
    greedy = logits.argmax(-1)
    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        assert torch.equal(sample_next_token(logits, 1.0, top_k=1, generator=g), greedy)
        assert torch.equal(sample_next_token(logits, 1.0, top_p=1e-6, generator=g), greedy)


def test_top_p_keeps_the_smallest_set_reaching_p():
    # probabilities 0.5, 0.3, 0.15, 0.05: p=0.8 keeps exactly the first two
    logits = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    g = torch.Generator().manual_seed(0)
    seen = {int(sample_next_token(logits, 1.0, top_p=0.8, generator=g)) for _ in range(300)}
    assert seen == {0, 1}
    seen = {int(sample_next_token(logits, 1.0, top_p=0.81, generator=g)) for _ in range(300)}
    assert seen == {0, 1, 2}


def test_top_k_restricts_to_k_tokens():
    logits = logits_batch()[:1]
    top3 = set(torch.topk(logits[0], 3).indices.tolist())
    g = torch.Generator().manual_seed(0)
    seen = {int(sample_next_token(logits, 2.0, top_k=3, generator=g)) for _ in range(200)}
    assert seen <= top3 and len(seen) > 1


def test_same_seed_same_samples():
    logits = logits_batch()

    def draw(seed):
        g = torch.Generator().manual_seed(seed)
        return [sample_next_token(logits, 1.0, top_k=20, top_p=0.9, generator=g) for _ in range(10)]

    assert all(torch.equal(a, b) for a, b in zip(draw(7), draw(7)))
    assert any(not torch.equal(a, b) for a, b in zip(draw(7), draw(8)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
    ],
)
def test_bad_arguments_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        sample_next_token(logits_batch(), **{"temperature": 1.0, **kwargs})
