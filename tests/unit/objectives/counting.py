"""Synthetic "counting" windows (each row counts upwards from a random start) and a short
training loop over them: tests use them to check that an objective's whole pipeline can
learn a signal that is visible by construction (a replaced token or a swapped span breaks
the count)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from llmtrain.objectives import Objective


def counting_windows(vocab: int, seq: int, seed: int = 1) -> Callable[[int], torch.Tensor]:
    """A function n -> (n, seq) windows of consecutive ids, drawn from one seeded generator."""
    g = torch.Generator().manual_seed(seed)

    def draw(n: int) -> torch.Tensor:
        return torch.randint(4, vocab - seq, (n, 1), generator=g) + torch.arange(seq)

    return draw


def train_on_counting(
    obj: Objective, model: torch.nn.Module, draw: Callable[[int], torch.Tensor], lr: float
) -> None:
    """300 AdamW steps of batch 32 on `draw`'s windows, loss averaged per target."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    for step in range(300):
        x = draw(32)
        batch = obj.make_batch((x, x), step=step, micro=0)
        loss, _ = obj.loss(obj.forward(model, batch), batch)
        (loss / batch.n_targets).backward()
        opt.step()
        opt.zero_grad()
