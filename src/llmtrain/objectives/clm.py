"""Causal language modelling (predict token t+1 from tokens <= t) and prefix LM.

`clm_loss` returns the SUM of token losses and the number of target tokens, so gradient
accumulation can normalise by the true token count of the whole optimizer step (averaging
per-micro-batch means is wrong as soon as micro-batches hold different numbers of tokens).
`PrefixLM` (Raffel et al. 2020 §3.2.3): a random prefix of each window is attended
bidirectionally and not predicted; the rest is ordinary next-token prediction.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from llmtrain.models.moe import moe_aux_loss
from llmtrain.objectives.base import IGNORE_INDEX, Batch, Objective, seeded_generator


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


class CLM(Objective):
    name = "clm"
    architectures = ("decoder",)

    def make_batch(self, x: torch.Tensor, y: torch.Tensor, step: int, micro: int) -> Batch:
        return Batch({"x": x, "y": y}, n_targets=int(y.numel()), n_tokens=int(y.numel()))

    def forward(self, model: Any, batch: Batch) -> dict[str, Any]:
        return {"logits": model(batch.tensors["x"]), "aux": moe_aux_loss(model)}  # (B, T, V)

    def loss(self, out: dict[str, Any], batch: Batch):
        logits, y = out["logits"], batch.tensors["y"]
        if self.label_smoothing or self.z_loss:
            loss_sum = self._ce(logits, y)
        else:  # the spine's exact numerics
            loss_sum, _ = clm_loss(logits, y)
        if out["aux"] is not None:
            loss_sum = loss_sum + out["aux"] * batch.n_targets
        return loss_sum, {}


class PrefixLM(CLM):
    name = "prefix_lm"

    def make_batch(self, x: torch.Tensor, y: torch.Tensor, step: int, micro: int) -> Batch:
        B, T = x.shape
        g = seeded_generator(self.seed, step, micro)
        prefix = torch.randint(1, T, (B,), generator=g)  # (B,) in [1, T-1]
        y = y.clone()
        # position t predicts x[t+1]; positions t < prefix-1 would predict prefix tokens
        y[torch.arange(T)[None, :] < (prefix[:, None] - 1)] = IGNORE_INDEX
        n = int((y != IGNORE_INDEX).sum())
        return Batch({"x": x, "y": y, "prefix_len": prefix}, n_targets=n, n_tokens=B * T)

    def forward(self, model: Any, batch: Batch) -> dict[str, Any]:
        t = batch.tensors
        return {"logits": model(t["x"], prefix_len=t["prefix_len"]), "aux": moe_aux_loss(model)}
