"""Objective-aware evaluation: any objective's loss and task metrics on fixed windows, and the
trivial baselines those metrics must beat.

`evaluate_objective` runs the model in eval mode on batches the objective builds with fixed
masks (steps -1, -2, ...) and returns its loss per target plus the task metrics: target-token
NLL and accuracy (CLM: next token; MLM/SOP/ELECTRA generator: masked tokens; span: span tokens,
sentinels and EOS left out), sentence-order accuracy (SOP/NSP), and replaced-token detection
accuracy and ROC AUC (ELECTRA). `target_unigram` counts the scored target ids on training
windows; passed back as `unigram`, the same call scores the unigram-frequency baseline (and the
most-frequent-token accuracy) on exactly the same targets.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from llmtrain.data.loader import TokenWindows
from llmtrain.objectives.base import IGNORE_INDEX, Batch, Objective
from llmtrain.objectives.electra import roc_auc


def scored_targets(objective: Objective, batch: Batch) -> torch.Tensor:
    """The token targets (B, T') a task metric scores, IGNORE_INDEX elsewhere: CLM's next
    tokens, the masked tokens of MLM/SOP/ELECTRA, the corrupted span tokens of T5 span
    corruption (its sentinels and final EOS are structure, predictable from position alone)."""
    t = batch.tensors
    targets = t["y"] if "y" in t else t["targets"]
    if objective.name == "span":
        targets = targets.clone()
        targets[targets >= objective.tok_vocab] = IGNORE_INDEX  # sentinels
        targets[:, -1] = IGNORE_INDEX  # the appended EOS
    return targets


def _batches(
    objective: Objective,
    windows: TokenWindows,
    indices: Sequence[int],
    micro_batch_size: int,
    repeats: int,
):
    """Fixed batches: each window once per repeat, with the masks of step -1 - repeat."""
    for r in range(repeats):
        for i in range(0, len(indices), micro_batch_size):
            x, y = windows.batch(indices[i : i + micro_batch_size])
            yield objective.make_batch(x, y, step=-1 - r, micro=i)


def target_unigram(
    objective: Objective,
    windows: TokenWindows,
    indices: Sequence[int],
    micro_batch_size: int = 32,
    repeats: int = 1,
) -> torch.Tensor:
    """Counts (V,) of the scored target ids (`scored_targets`) over batches of `windows`,
    V = the tokenizer's vocabulary + the objective's extra ids. Built on training windows,
    it is the unigram-frequency predictor that `evaluate_objective(unigram=...)` scores."""
    V = objective.tok_vocab + objective.extra_vocab
    counts = torch.zeros(V, dtype=torch.float64)
    for batch in _batches(objective, windows, indices, micro_batch_size, repeats):
        tgt = scored_targets(objective, batch)
        tgt = tgt[tgt != IGNORE_INDEX]
        counts += torch.bincount(tgt, minlength=V)[:V].double()
    return counts


@torch.no_grad()
def evaluate_objective(
    model: nn.Module,
    objective: Objective,
    windows: TokenWindows,
    indices: Sequence[int],
    micro_batch_size: int,
    device: torch.device | str = "cpu",
    *,
    unigram: torch.Tensor | None = None,
    repeats: int = 1,
) -> dict[str, float]:
    """Loss and task metrics of `objective` on `windows[indices]`, the model in eval mode.

    Returns `loss` (the objective's own loss per target, aux losses included), `token_nll`
    and `token_acc` over the scored targets (with `targets`, their count), `sentence_acc`
    (+ `sentence_majority`, the share of the commoner label) for SOP/NSP, and `rtd_auc`,
    `rtd_acc`, `replaced_frac` for ELECTRA. With `unigram` counts (`target_unigram`):
    `unigram_nll` (add-one smoothed) and `unigram_acc` (always the most frequent id) on the
    same targets. `repeats` > 1 draws that many mask sets per window (more labels for SOP).
    """
    was_training = model.training
    model.eval()
    log_uni = top_uni = None
    if unigram is not None:
        log_uni = ((unigram + 1) / (unigram.sum() + unigram.numel())).log()  # (V,)
        top_uni = int(unigram.argmax())
    sums: dict[str, float] = {}
    scores, labels = [], []

    def add(key: str, value: float | torch.Tensor) -> None:
        sums[key] = sums.get(key, 0.0) + float(value)

    for batch in _batches(objective, windows, indices, micro_batch_size, repeats):
        batch = batch.to(device)
        out = objective.forward(model, batch)
        loss_sum, _ = objective.loss(out, batch)
        add("loss", loss_sum)
        add("n_targets", batch.n_targets)
        tgt = scored_targets(objective, batch)
        keep = tgt != IGNORE_INDEX
        logits = out["logits"][keep].float()  # (n, V)
        tgt = tgt[keep]  # (n,)
        add("nll", torch.nn.functional.cross_entropy(logits, tgt, reduction="sum"))
        add("correct", (logits.argmax(-1) == tgt).sum())
        add("targets", tgt.numel())
        if log_uni is not None:
            add("uni_nll", -log_uni[tgt.cpu()].sum())
            add("uni_correct", (tgt == top_uni).sum())
        if "sentence" in out:
            label = batch.tensors["label"]
            add("sent_correct", (out["sentence"].argmax(-1) == label).sum())
            add("sent_pos", label.sum())
            add("sent_count", label.numel())
        if "disc" in out:
            scores.append(out["disc"].float().flatten().cpu())
            labels.append((out["corrupted"] != batch.tensors["original"]).flatten().cpu())
    model.train(was_training)
    return _summarise(sums, scores, labels)


def _summarise(sums: dict[str, float], scores: list, labels: list) -> dict[str, float]:
    n = max(1.0, sums["targets"])
    res = {
        "loss": sums["loss"] / max(1.0, sums["n_targets"]),
        "token_nll": sums["nll"] / n,
        "token_acc": sums["correct"] / n,
        "targets": int(sums["targets"]),
    }
    if "uni_nll" in sums:
        res["unigram_nll"] = sums["uni_nll"] / n
        res["unigram_acc"] = sums["uni_correct"] / n
    if "sent_count" in sums:
        count = sums["sent_count"]
        res["sentence_acc"] = sums["sent_correct"] / count
        res["sentence_majority"] = max(sums["sent_pos"], count - sums["sent_pos"]) / count
        res["sentences"] = int(count)
    if scores:
        s, lab = torch.cat(scores), torch.cat(labels)
        res["rtd_auc"] = roc_auc(s, lab)
        res["rtd_acc"] = float(((s > 0) == lab).double().mean())
        res["replaced_frac"] = float(lab.double().mean())
        res["rtd_tokens"] = int(lab.numel())
    return res
