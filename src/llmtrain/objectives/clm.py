"""Causal language modelling: predict token t+1 from tokens <= t.

`clm_loss` returns the SUM of token losses and the number of target tokens, so gradient
accumulation can normalise by the true token count of the whole optimizer step (averaging
per-micro-batch means is wrong as soon as micro-batches hold different numbers of tokens).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def clm_loss(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """logits (B, T, V), targets (B, T) with IGNORE_INDEX for masked positions.

    Returns (sum of cross-entropy over target tokens in fp32, count of target tokens)."""
    loss_sum = F.cross_entropy(
        logits.float().reshape(-1, logits.size(-1)),  # (B*T, V), fp32 for a stable softmax
        targets.reshape(-1),  # (B*T,)
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )
    count = (targets != IGNORE_INDEX).sum()
    return loss_sum, count
