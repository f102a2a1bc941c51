"""The one evaluation path: `evaluate(model, objective, source, ...)` scores any objective on
fixed items of a data source — the trainer's val evals, `llmtrain eval` and the benches all
call it. The objective builds the batches (fixed masks: steps -1, -2, ...), and declares its
metrics (`Objective.eval_step` / `report`) and whether perplexity and bits per byte exist.

Bits per byte normalises away the tokenizer: bpb = loss_nats_per_token × tokens / (bytes ×
ln 2), with tokens/bytes of the split taken from the manifest, so a char model and a BPE model
can be compared on the same text.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from llmtrain.objectives.base import IGNORE_INDEX, Batch, DataSource, Objective, Tally

Autocast = Callable[[], contextlib.AbstractContextManager]


def bits_per_byte(loss: float, tokens: int, nbytes: int) -> float:
    if nbytes <= 0:
        return float("nan")
    return loss * tokens / (nbytes * math.log(2))


def spread(n: int, max_items: int | None) -> list[int]:
    """Fixed, evenly spaced indices of at most `max_items` of `n` items (all when it fits)."""
    want = n if max_items is None else max(1, max_items)
    if want >= n:
        return list(range(n))
    return np.linspace(0, n - 1, want).round().astype(int).tolist()


def fixed_batches(
    objective: Objective,
    source: DataSource,
    indices: Sequence[int],
    micro_batch_size: int,
    repeats: int = 1,
) -> Iterator[Batch]:
    """Each item once per repeat, in micro-batches, with the masks of step -1 - repeat."""
    for r in range(repeats):
        for i in range(0, len(indices), micro_batch_size):
            sample = source.batch(indices[i : i + micro_batch_size])
            yield objective.make_batch(sample, step=-1 - r, micro=i)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    objective: Objective,
    source: DataSource,
    *,
    max_items: int | None = None,
    indices: Sequence[int] | None = None,
    micro_batch_size: int = 16,
    device: torch.device | str = "cpu",
    autocast: Autocast = contextlib.nullcontext,
    split: Mapping[str, int] | None = None,
    unigram: torch.Tensor | None = None,
    repeats: int = 1,
) -> dict[str, float]:
    """`objective`'s metrics of `model` (eval mode, restored after) on `source`.

    Items: `indices`, or up to `max_items` evenly spaced ones (all when None; token windows:
    max_tokens // block_size). Returns `loss` (the objective's own loss per target, without
    label smoothing, z-loss or MoE aux loss), `tokens` (read by the model), the objective's
    `report` (e.g. `token_acc`, `sentence_acc`, `rtd_auc`), and where the objective is a
    next-token one, `ppl` and, given the split's manifest entry `split` ({tokens, bytes}),
    `bpb`. With `unigram` counts (`target_unigram`): `unigram_nll` (add-one smoothed) and
    `unigram_acc` (always the most frequent id) on the same scored targets. `repeats` > 1
    draws that many mask sets per item.
    """
    idx = list(indices) if indices is not None else spread(len(source), max_items)
    was_training = model.training
    model.eval()
    tally = Tally()
    try:
        for batch in fixed_batches(objective, source, idx, micro_batch_size, repeats):
            batch = batch.to(device)
            with autocast():
                out = objective.forward(model, batch)
            tally.add("loss", objective.loss(out, batch, train=False)[0])
            tally.add("n_targets", batch.n_targets)
            tally.add("tokens", batch.n_tokens)
            objective.eval_step(out, batch, tally)
            if unigram is not None:
                _unigram_step(unigram, objective.scored_targets(batch), tally)
    finally:
        model.train(was_training)
    return _summarise(objective, tally, split, unigram is not None)


def _unigram_step(counts: torch.Tensor, targets: torch.Tensor, tally: Tally) -> None:
    log_p = ((counts + 1) / (counts.sum() + counts.numel())).log()  # (V,)
    tgt = targets[targets != IGNORE_INDEX].cpu()
    tally.add("uni_nll", -log_p[tgt].sum())
    tally.add("uni_correct", (tgt == int(counts.argmax())).sum())
    tally.add("uni_targets", tgt.numel())


def _summarise(
    objective: Objective, tally: Tally, split: Mapping[str, int] | None, unigram: bool
) -> dict[str, float]:
    loss = tally.get("loss") / max(1.0, tally.get("n_targets"))
    res: dict[str, float] = {"loss": loss}
    if objective.next_token:
        res["ppl"] = math.exp(min(loss, 50.0))
        if split is not None:
            res["bpb"] = bits_per_byte(loss, split.get("tokens", 0), split.get("bytes", 0))
    res.update(objective.report(tally))
    res["tokens"] = int(tally.get("tokens"))
    if unigram:
        n = max(1.0, tally.get("uni_targets"))
        res["unigram_nll"] = tally.get("uni_nll") / n
        res["unigram_acc"] = tally.get("uni_correct") / n
    return res


def target_unigram(
    objective: Objective,
    source: DataSource,
    indices: Sequence[int],
    micro_batch_size: int = 32,
    repeats: int = 1,
) -> torch.Tensor:
    """Counts (V,) of the scored target ids (`Objective.scored_targets`) over batches of
    `source`, V = the tokenizer's vocabulary + the objective's extra ids. Built on training
    items, it is the unigram-frequency predictor `evaluate(unigram=...)` scores."""
    V = objective.tok_vocab + objective.extra_vocab
    counts = torch.zeros(V, dtype=torch.float64)
    for batch in fixed_batches(objective, source, indices, micro_batch_size, repeats):
        tgt = objective.scored_targets(batch)
        tgt = tgt[tgt != IGNORE_INDEX]
        counts += torch.bincount(tgt, minlength=V)[:V].double()
    return counts
