"""Gradient accumulation is exact: one micro-batch of 8 and eight micro-batches of 1 give the
same update, even when micro-batches hold different numbers of target tokens (masked
positions), because the loss is normalised by the whole step's target count (the bug class
of transformers #34191)."""

from __future__ import annotations

import torch

from llmtrain.objectives.base import IGNORE_INDEX, Batch
from llmtrain.train.config import load_run_config
from llmtrain.train.trainer import Trainer

from .conftest import tiny_overrides


def masked_batch(sample: tuple[torch.Tensor, torch.Tensor], *, step: int, micro: int) -> Batch:
    """Mask targets by content (not by position in the micro-batch), so each sequence gets
    the same mask whatever the split, and micro-batches get unequal target counts."""
    x, y = sample
    y = y.clone()
    y[(y % 3 == 0) | (x % 5 == 0)] = IGNORE_INDEX
    half = (x[:, 0] % 2 == 0)[:, None] & (torch.arange(y.shape[1]) < y.shape[1] // 2)
    y[half] = IGNORE_INDEX  # and some sequences half empty
    n = int((y != IGNORE_INDEX).sum())
    return Batch(x, y, n_targets=n, n_tokens=int(y.numel()))


def step_gradients(data, run, micro: int) -> tuple[float, dict[str, torch.Tensor]]:
    """Loss and (clipped) gradients of the first optimizer step with the given micro-batch.

    Gradients, not weights, are compared: Adam's first update g/(|g|+eps) turns fp32
    summation-order noise on near-zero gradients into +-lr differences."""
    over = tiny_overrides(data, steps=1, **{"train.batch_size": 8,
                                            "train.micro_batch_size": micro})  # fmt: skip
    trainer = Trainer(load_run_config([], None, over), run, show_progress=False)
    trainer.objective.make_batch = masked_batch
    grads: dict[str, torch.Tensor] = {}

    def capture() -> None:
        grads.update({n: p.grad.clone() for n, p in trainer.model.named_parameters()})

    trainer.optimizer.step = capture
    out = trainer.train_step()
    trainer.logger.close()
    return out["loss"], grads


def test_1x8_equals_8x1_with_unequal_masks(char_data, tmp_path):
    loss1, one = step_gradients(char_data, tmp_path / "a", micro=8)
    loss8, eight = step_gradients(char_data, tmp_path / "b", micro=1)
    assert abs(loss1 - loss8) < 1e-5
    assert one.keys() == eight.keys()
    for k in one:
        assert one[k].abs().sum() > 0, k
        torch.testing.assert_close(one[k], eight[k], rtol=1e-4, atol=1e-7, msg=k)
