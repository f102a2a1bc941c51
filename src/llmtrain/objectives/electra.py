"""ELECTRA replaced-token detection (Clark et al. 2020) for the `Electra` model.

The batch is an MLM batch (same dynamic masking, same MASK id) plus one uniform per token
for the generator's sample. Loss = generator MLM loss + 50 · discriminator BCE (the paper's
λ = 50), with the discriminator averaged over every token: each token's BCE weighs
λ · mask_prob target tokens, a constant, so the sum stays exact under any micro-batch split
(the step divides by the masked-token count; masked ≈ mask_prob · tokens). Metrics: masked
token accuracy of the generator, replaced-token detection accuracy and ROC AUC.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from llmtrain.models.moe import moe_aux_loss
from llmtrain.objectives.base import (
    IGNORE_INDEX,
    Batch,
    Tally,
    accuracy_counts,
    head_positions,
    seeded_generator,
)
from llmtrain.objectives.mlm import MLM

if TYPE_CHECKING:
    from llmtrain.objectives.config import ObjectiveConfig

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
    architectures = ("encoder",)
    fuses_loss = False  # the generator's logits are sampled from: they are needed whole
    needs_generator = True
    headline = ("rtd_auc", "token_acc")

    def __init__(self, vocab_size: int, options: ObjectiveConfig, **kw: Any) -> None:
        super().__init__(vocab_size, options, **kw)
        self.disc_weight = float(options.disc_weight)

    def make_batch(self, sample: Any, *, step: int, micro: int) -> Batch:
        x = sample[0]  # token windows: (x, y)
        g = seeded_generator(self.seed, step, micro)
        inputs, targets = self._mask(x, g)
        u = torch.rand(x.shape, generator=g)  # (B, T): the generator's sampling draws
        n = int((targets != IGNORE_INDEX).sum())
        extra = {"original": x, "uniforms": u}
        # the generator samples (and its head runs) at the masked positions only
        predict = head_positions(targets)
        return Batch(
            inputs, targets, n_targets=n, n_tokens=int(x.numel()), predict=predict, extra=extra
        )

    def forward(self, model: Any, batch: Batch) -> dict[str, Any]:
        gen, disc, corrupted = model(batch.inputs, batch.predict, batch.extra["uniforms"])
        return {"logits": gen, "disc": disc, "corrupted": corrupted, "aux": moe_aux_loss(model)}

    def _replaced(self, out: dict[str, Any], batch: Batch) -> torch.Tensor:
        return out["corrupted"] != batch.extra["original"]  # (B, T) bool

    def loss(self, out: dict[str, Any], batch: Batch, *, train: bool = True):
        targets = batch.targets
        loss_sum = self._ce(out, batch, train)
        replaced = self._replaced(out, batch).float()  # (B, T)
        disc = out["disc"].float()
        bce = F.binary_cross_entropy_with_logits(disc, replaced, reduction="sum")
        loss_sum = loss_sum + self.disc_weight * self.prob * bce
        loss_sum = self._with_aux(loss_sum, out, batch, train)
        metrics = accuracy_counts(out["logits"].argmax(-1), self.at_head(batch, targets))
        metrics["rtd_correct"] = ((disc > 0).float() == replaced).sum().detach()
        metrics["rtd_count"] = torch.tensor(replaced.numel())
        metrics["replaced"] = replaced.sum().detach()
        return loss_sum, metrics

    def metrics(self, totals: dict[str, Any]) -> dict[str, float]:
        out = super().metrics(totals)
        if int(totals.get("rtd_count", 0)):
            out["rtd_acc"] = float(totals["rtd_correct"]) / int(totals["rtd_count"])
            out["replaced_frac"] = float(totals["replaced"]) / int(totals["rtd_count"])
        return out

    def eval_step(self, out: dict[str, Any], batch: Batch, tally: Tally) -> None:
        super().eval_step(out, batch, tally)  # the generator's masked-token NLL / accuracy
        tally.keep("rtd_score", out["disc"].float())
        tally.keep("rtd_label", self._replaced(out, batch))

    def report(self, tally: Tally) -> dict[str, float]:
        """+ replaced-token detection: `rtd_auc` (ROC AUC of the discriminator's logits),
        `rtd_acc`, `replaced_frac` (the share of tokens the generator changed), `rtd_tokens`."""
        res = super().report(tally)
        s, lab = tally.cat("rtd_score"), tally.cat("rtd_label").bool()
        res["rtd_auc"] = roc_auc(s, lab)
        res["rtd_acc"] = float(((s > 0) == lab).double().mean()) if lab.numel() else float("nan")
        res["replaced_frac"] = float(lab.double().mean()) if lab.numel() else float("nan")
        res["rtd_tokens"] = int(lab.numel())
        return res
