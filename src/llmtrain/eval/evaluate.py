"""Language-model evaluation on fixed windows of a split.

Bits per byte normalises away the tokenizer: bpb = loss_nats_per_token × tokens / (bytes ×
ln 2), with tokens/bytes of the split taken from the manifest, so a char model and a BPE model
can be compared on the same text.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from llmtrain.data.loader import TokenWindows, eval_windows
from llmtrain.objectives.base import Objective
from llmtrain.objectives.clm import clm_loss


@torch.no_grad()
def mean_loss(
    model: nn.Module,
    windows: TokenWindows,
    indices: Sequence[int],
    micro_batch_size: int,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    objective: Objective | None = None,
) -> tuple[float, int]:
    """Mean loss (nats/target) over the given windows, and the target count: CLM, or the
    training objective's loss on batches it builds with fixed masks (step -1)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(indices), micro_batch_size):
        x, y = windows.batch(indices[i : i + micro_batch_size])
        if objective is not None:
            batch = objective.make_batch(x, y, step=-1, micro=i).to(device)
            with autocast():
                out = objective.forward(model, batch)
            total += float(objective.loss(out, batch)[0])
            count += batch.n_targets
            continue
        x, y = x.to(device), y.to(device)
        with autocast():
            logits = model(x)
        loss_sum, n = clm_loss(logits, y)
        total += float(loss_sum)
        count += int(n)
    model.train(was_training)
    return total / max(1, count), count


def bits_per_byte(loss: float, tokens: int, nbytes: int) -> float:
    if nbytes <= 0:
        return float("nan")
    return loss * tokens / (nbytes * math.log(2))


def evaluate_split(
    model: nn.Module,
    windows: TokenWindows,
    split_info: dict,
    *,
    max_tokens: int,
    micro_batch_size: int,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    objective: Objective | None = None,
) -> dict[str, float]:
    """loss, ppl and bpb on up to `max_tokens` of a split (`split_info` from the manifest)."""
    idx = eval_windows(windows, max_tokens)
    loss, n = mean_loss(model, windows, idx, micro_batch_size, device, autocast, objective)
    return {
        "loss": loss,
        "ppl": math.exp(min(loss, 50.0)),
        "bpb": bits_per_byte(loss, split_info.get("tokens", 0), split_info.get("bytes", 0)),
        "tokens": n,
    }
