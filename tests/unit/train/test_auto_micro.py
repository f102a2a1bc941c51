"""Automatic micro-batch size: the binary search backs off on (simulated) out-of-memory
errors, the CPU path picks by a memory budget, and accumulation keeps the global batch."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from llmtrain.train import auto_micro
from llmtrain.train.auto_micro import (
    activation_bytes_per_sequence,
    budget_probe,
    candidates,
    choose_micro_batch,
    largest_that_fits,
    oom_probe,
)
from llmtrain.train.config import RunConfig, TrainConfig


def fake_oom_above(limit: int, tried: list[int]):
    def trial(m: int) -> None:
        tried.append(m)
        if m > limit:
            raise torch.OutOfMemoryError(f"simulated: {m} sequences do not fit")

    return trial


@pytest.mark.parametrize("limit", [1, 3, 4, 12, 64])
def test_search_backs_off_on_oom(limit):
    sizes = candidates(64, world_size=1)  # 1 2 4 8 16 32 64
    tried: list[int] = []
    best = largest_that_fits(sizes, oom_probe(fake_oom_above(limit, tried), torch.device("cpu")))
    assert best == max(s for s in sizes if s <= limit)
    assert len(tried) <= 3  # binary search over 7 candidates


def test_other_errors_are_not_swallowed():
    def trial(m: int) -> None:
        raise RuntimeError("a real bug")

    with pytest.raises(RuntimeError, match="real bug"):
        oom_probe(trial, torch.device("cpu"))(4)


def test_cuda_path_with_simulated_oom_keeps_the_global_batch(monkeypatch):
    cfg = RunConfig()
    cfg.train = TrainConfig(batch_size=48, auto_micro_batch=True)
    tried: list[int] = []
    monkeypatch.setattr(auto_micro, "trial_step", lambda *a: fake_oom_above(5, tried))
    prec = SimpleNamespace(device=torch.device("cuda"))
    micro = choose_micro_batch(cfg, None, None, None, prec, world_size=2, vocab=64)
    assert micro == 4 and tried  # divisors of 24 per rank: 1 2 3 4 6 8 12 24
    cfg.train.micro_batch_size = micro
    assert cfg.train.grad_accum(world_size=2) == 6  # 4 x 6 x 2 = 48


def test_cpu_path_picks_by_memory_budget(monkeypatch):
    cfg = RunConfig()
    cfg.train = TrainConfig(batch_size=32)
    m = cfg.model
    m.n_layer, m.n_embd, m.n_head, m.block_size, m.vocab_size = 2, 32, 2, 64, 100
    per_seq = activation_bytes_per_sequence(2, 32, 2, 64, 100)
    monkeypatch.setattr(auto_micro, "available_memory_bytes", lambda: 2 * 5 * per_seq)
    prec = SimpleNamespace(device=torch.device("cpu"))
    assert choose_micro_batch(cfg, None, None, None, prec, world_size=1, vocab=100) == 4
    assert budget_probe(per_seq, 8 * per_seq)(8) and not budget_probe(per_seq, 8 * per_seq)(9)
