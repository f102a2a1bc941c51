"""ELECTRA replaced-token detection (Clark et al. 2020) for the `Electra` model.

The batch is an MLM batch (same dynamic masking, same MASK id) plus one uniform per token
for the generator's sample. Loss = generator MLM loss + 50 · discriminator BCE (the paper's
λ = 50), with the discriminator averaged over every token: each token's BCE weighs
λ · mask_prob target tokens, a constant, so the sum stays exact under any micro-batch split
(the step divides by the masked-token count; masked ≈ mask_prob · tokens). Metrics: masked
token accuracy of the generator, replaced-token detection accuracy and ROC AUC.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from llmtrain.models.moe import moe_aux_loss
from llmtrain.objectives.base import IGNORE_INDEX, Batch, accuracy_counts, seeded_generator
from llmtrain.objectives.mlm import MLM

DISC_WEIGHT = 50.0  # ELECTRA §3.1 / Appendix A (discriminator loss weight λ)


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); nan when one
    class is absent."""
    scores, labels = scores.flatten().double(), labels.flatten().bool()
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = scores.argsort()
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, scores.numel() + 1, dtype=torch.float64)
    uniq, inv = scores.unique(return_inverse=True)  # average the ranks of tied scores
    mean_rank = torch.zeros(uniq.numel(), dtype=torch.float64).index_add_(0, inv, ranks)
    mean_rank /= torch.bincount(inv, minlength=uniq.numel()).double()
    u = mean_rank[inv][labels].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


class ReplacedTokenDetection(MLM):
    name = "electra"
    token_cross_entropy = False  # generator MLM + 50 x discriminator BCE
    architectures = ("encoder",)
    needs_generator = True

    def __init__(self, vocab_size: int, seed: int = 0, **options: Any) -> None:
        super().__init__(vocab_size, seed, **options)
        self.disc_weight = float(options.get("disc_weight", DISC_WEIGHT))

    def make_batch(self, x: torch.Tensor, y: torch.Tensor, step: int, micro: int) -> Batch:
        g = seeded_generator(self.seed, step, micro)
        inputs, targets = self._mask(x, g)
        u = torch.rand(x.shape, generator=g)  # (B, T): the generator's sampling draws
        n = int((targets != IGNORE_INDEX).sum())
        t = {"x": inputs, "targets": targets, "original": x, "u": u}
        return Batch(t, n_targets=n, n_tokens=int(x.numel()))

    def forward(self, model: Any, batch: Batch) -> dict[str, Any]:
        t = batch.tensors
        gen, disc, corrupted = model(t["x"], t["targets"] != IGNORE_INDEX, t["u"])
        return {"logits": gen, "disc": disc, "corrupted": corrupted, "aux": moe_aux_loss(model)}

    def loss(self, out: dict[str, Any], batch: Batch):
        targets = batch.tensors["targets"]
        loss_sum = self._ce(out["logits"], targets)
        replaced = (out["corrupted"] != batch.tensors["original"]).float()  # (B, T)
        disc = out["disc"].float()
        bce = F.binary_cross_entropy_with_logits(disc, replaced, reduction="sum")
        loss_sum = loss_sum + self.disc_weight * self.prob * bce
        if out["aux"] is not None:
            loss_sum = loss_sum + out["aux"] * batch.n_targets
        metrics = accuracy_counts(out["logits"], targets)
        metrics["rtd_correct"] = ((disc > 0).float() == replaced).sum().detach()
        metrics["rtd_count"] = torch.tensor(replaced.numel())
        metrics["replaced"] = replaced.sum().detach()
        return loss_sum, metrics
