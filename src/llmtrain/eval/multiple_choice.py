"""Multiple-choice scoring as lm-evaluation-harness does it: the sum of the log-likelihoods of
each choice's tokens given the context, with the harness's tokenisation (`encode_pair`).

Entry points: `score_task(model, tokenizer, task, shots=0)` → a result dict (acc, acc_norm by
characters, acc_bytes by UTF-8 bytes, chance, chance-centred score); `choice_loglikelihoods`
(each question's context run once through a KV cache shared by its choices, where it fits the
window; otherwise `loglikelihoods`, batched longest first); `summary` over several tasks.
Causal decoders only; encoder families are refused with the reason (`require_causal`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from llmtrain.errors import ConfigError
from llmtrain.eval.tasks import MCItem, Task
from llmtrain.models.kv_cache import KVCache
from llmtrain.utils.progress import progress

Pair = tuple[list[int], list[int]]  # (context ids, continuation ids)
FEWSHOT_SEED = 1234  # lm-eval's default sampler seed
FEWSHOT_DELIMITER = "\n\n"


def require_causal(model: nn.Module) -> None:
    """ConfigError unless `model` is a causal decoder (the only family scored here)."""
    cfg = getattr(model, "cfg", None)
    if cfg is None or not getattr(cfg, "causal", False):
        arch = getattr(cfg, "architecture", type(model).__name__)
        raise ConfigError(
            f"multiple-choice tasks score a choice by its causal log-likelihood; this run's "
            f"model is a bidirectional {arch}, which has none, so it is not scored "
            "(pseudo-log-likelihood for masked LMs is not implemented); evaluate it with "
            "`llmtrain eval RUN` (its objective's metrics) or fine-tune it on the task"
        )


def encode_pair(tokenizer: Any, context: str, continuation: str) -> Pair:
    """lm-eval 0.4's `_encode_pair` for causal models: trailing spaces of the context move to
    the continuation; the continuation's ids are those of context+continuation after the
    context's own ids. An empty context becomes the BOS id (`loglikelihood`'s prefix)."""
    if not context:
        cont = tokenizer.encode(continuation)
        bos = tokenizer.bos_id
        return ([bos], cont) if cont[0] != bos else (cont[:1], cont[1:])
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tokenizer.encode(context + continuation)
    ctx = tokenizer.encode(context)
    return ctx, whole[len(ctx) :]


def fewshot_context(items: Sequence[MCItem], i: int, shots: int, seed: int) -> str:
    """Item i's context after `shots` solved examples drawn (seeded, per item) from the other
    items, each `query + delimiter + gold choice`, joined by blank lines as lm-eval does."""
    item = items[i]
    if shots <= 0:
        return item.query
    if shots >= len(items):
        raise ConfigError(
            f"--shots {shots} needs more than {shots} items; the task has {len(items)}"
        )
    rng = random.Random(seed * 1_000_003 + i)
    pool = rng.sample(range(len(items)), shots + 1)
    picks = [j for j in pool if j != i][:shots]
    demos = [items[j].query + items[j].delimiter + items[j].choices[items[j].gold] for j in picks]
    return FEWSHOT_DELIMITER.join([*demos, item.query])


@torch.no_grad()
def loglikelihoods(
    model: nn.Module,
    pairs: Sequence[Pair],
    *,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    desc: str = "score",
    quiet: bool = False,
) -> list[float]:
    """Sum of log p(continuation | context) for each pair, as lm-eval's HFLM computes it:
    the input is (context + continuation)[-(block+1):][:-1] (left-truncated to the window),
    rows are right-padded (causal attention never sees the padding) and run longest first.
    A continuation longer than the window (where lm-eval stops with an assertion) has only its
    last block_size tokens scored; `task_result` counts such items as "truncated"."""
    block = model.cfg.block_size
    order = sorted(range(len(pairs)), key=lambda k: -len(pairs[k][0]) - len(pairs[k][1]))
    out = [0.0] * len(pairs)
    was_training = model.training
    model.eval()
    with progress(len(pairs), desc, "it", disable=quiet) as bar:
        for s in range(0, len(order), batch_size):
            chunk = order[s : s + batch_size]
            rows = [(pairs[k][0] + pairs[k][1])[-(block + 1) :][:-1] for k in chunk]
            width = max(len(r) for r in rows)
            idx = torch.zeros(len(rows), width, dtype=torch.long)  # (B, T) right-padded
            for b, r in enumerate(rows):
                idx[b, : len(r)] = torch.tensor(r)
            logp = F.log_softmax(model(idx.to(device)).float(), dim=-1).cpu()  # (B, T, V)
            for b, k in enumerate(chunk):
                end = len(rows[b])
                cont = pairs[k][1][-end:]  # a continuation longer than the window: its tail
                n = len(cont)
                tgt = torch.tensor(cont).unsqueeze(-1)  # (n, 1)
                out[k] = float(logp[b, end - n : end].gather(-1, tgt).sum())
            bar.advance(len(chunk))
    model.train(was_training)
    return out


@torch.no_grad()
def shared_prefix_loglikelihoods(
    model: nn.Module, context: list[int], continuations: Sequence[list[int]], device: Any
) -> list[float]:
    """log p(cont | context) of every continuation of one question with the context run once:
    its keys/values are cached (batch 1), copied to a cache of one row per continuation, and
    only the continuations run after it. Equal to `loglikelihoods` when context + the longest
    continuation fit the window (the caller checks; otherwise use `loglikelihoods`)."""
    cfg = model.cfg
    k, longest = len(continuations), max(len(c) for c in continuations)
    param = next(model.parameters())
    one = KVCache.for_model(cfg, 1, len(context), device, param.dtype)
    h_ctx = model.forward_hidden(torch.tensor([context], device=device), one)  # (1, Tc, C)
    first = F.log_softmax(model.logits(h_ctx[:, -1]).float(), -1)[0].cpu()  # (V,)
    out = [float(first[c[0]]) for c in continuations]
    if longest == 1:
        return out
    cache = KVCache.for_model(cfg, k, len(context) + longest - 1, device, param.dtype)
    for layer in range(cfg.n_layer):  # the context's keys/values, shared by every row
        cache.k[layer][:, :, : one.pos] = one.k[layer][:, :, : one.pos]
        cache.v[layer][:, :, : one.pos] = one.v[layer][:, :, : one.pos]
    cache.pos = one.pos
    idx = torch.zeros(k, longest - 1, dtype=torch.long)  # (k, Tm - 1) right-padded
    for b, c in enumerate(continuations):
        idx[b, : len(c) - 1] = torch.tensor(c[:-1])
    logp = F.log_softmax(model.logits(model.forward_hidden(idx.to(device), cache)).float(), -1)
    logp = logp.cpu()  # (k, Tm - 1, V): position j predicts continuation token j + 1
    for b, c in enumerate(continuations):
        tgt = torch.tensor(c[1:]).unsqueeze(-1)  # (n - 1, 1)
        out[b] += float(logp[b, : len(c) - 1].gather(-1, tgt).sum())
    return out


def choice_loglikelihoods(
    model: nn.Module,
    groups: Sequence[Sequence[Pair]],
    *,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    desc: str = "score",
    quiet: bool = False,
    prefix_reuse: bool | None = None,
) -> list[float]:
    """The flat per-choice log-likelihoods of `groups` (one group of pairs per question, all
    with the same context): questions whose context and longest choice fit the window run
    their context once (`shared_prefix_loglikelihoods`), the rest go through the batched
    `loglikelihoods` (left truncation as lm-eval). `prefix_reuse` None (auto) reuses where it
    pays: when the context tokens saved, (choices − 1) × context, are at least twice the
    choice tokens; else one forward per question costs more than it saves (many short
    choices gain, two long ones do not: bench/eval_prefix_reuse.py)."""
    block = model.cfg.block_size
    out: list[list[float]] = [[] for _ in groups]
    rest: list[int] = []
    was_training = model.training
    model.eval()
    with progress(len(groups), desc, "q", disable=quiet) as bar:
        for g, pairs in enumerate(groups):
            ctx = pairs[0][0]
            if _reuse(prefix_reuse, ctx, [c for _, c in pairs], block):
                conts = [c for _, c in pairs]
                out[g] = shared_prefix_loglikelihoods(model, ctx, conts, device)
                bar.advance()
            else:
                rest.append(g)
        flat = [p for g in rest for p in groups[g]]
        lls = loglikelihoods(model, flat, batch_size=batch_size, device=device, quiet=True)
        k = 0
        for g in rest:
            out[g], k = lls[k : k + len(groups[g])], k + len(groups[g])
        bar.advance(len(rest))
    model.train(was_training)
    return [x for g in out for x in g]


def _reuse(wanted: bool | None, ctx: list[int], conts: list[list[int]], block: int) -> bool:
    if len(ctx) + max(len(c) for c in conts) - 1 > block or wanted is False:
        return False  # does not fit one window (lm-eval truncates: the padded path does too)
    return wanted or (len(conts) - 1) * len(ctx) >= 2 * sum(len(c) for c in conts)


def item_pairs(tokenizer: Any, items: Sequence[MCItem], shots: int, seed: int) -> list[Pair]:
    """The (context, continuation) ids of every choice of every item, item by item."""
    pairs = []
    for i, item in enumerate(items):
        ctx = fewshot_context(items, i, shots, seed)
        pairs += [encode_pair(tokenizer, ctx, item.delimiter + c) for c in item.choices]
    return pairs


def group_pairs(task: Task, pairs: Sequence[Pair]) -> list[list[Pair]]:
    """The flat pairs of `item_pairs` cut back into one list per question."""
    groups, k = [], 0
    for item in task.items:
        groups.append(list(pairs[k : k + len(item.choices)]))
        k += len(item.choices)
    return groups


def predictions(item: MCItem, lls: Sequence[float]) -> dict[str, int]:
    """The chosen index under each rule: raw sum, per character, per UTF-8 byte (first on
    ties, as numpy's argmax in lm-eval)."""
    chars = [len(c) for c in item.choices]
    nbytes = [len(c.encode("utf-8")) for c in item.choices]

    def argmax(values: list[float]) -> int:
        return max(range(len(values)), key=lambda i: (values[i], -i))

    return {
        "acc": argmax(list(lls)),
        "acc_norm": argmax([ll / n for ll, n in zip(lls, chars, strict=True)]),
        "acc_bytes": argmax([ll / n for ll, n in zip(lls, nbytes, strict=True)]),
    }


def task_result(task: Task, lls: Sequence[float], shots: int = 0) -> dict[str, Any]:
    """Per-task scores from the flat list of per-choice log-likelihoods (item by item)."""
    hits = {"acc": 0, "acc_norm": 0, "acc_bytes": 0}
    per_item, k = [], 0
    for item in task.items:
        ll = list(lls[k : k + len(item.choices)])
        k += len(item.choices)
        pred = predictions(item, ll)
        for key in hits:
            hits[key] += pred[key] == item.gold
        per_item.append({"gold": item.gold, "lls": ll, **{f"pred_{m}": p for m, p in pred.items()}})
    n = len(task.items)
    res: dict[str, Any] = {"task": task.name, "format": task.format, "n": n, "shots": shots}
    for key, h in hits.items():
        res[key] = h / n
    res["acc_stderr"] = math.sqrt(res["acc"] * (1 - res["acc"]) / max(1, n - 1))
    res["chance"] = task.chance
    res["centered"] = centered(res["acc"], task.chance)
    res["centered_norm"] = centered(res["acc_norm"], task.chance)
    res["items"] = per_item
    return res


def centered(acc: float, chance: float) -> float:
    """(acc - chance) / (1 - chance): 0 at chance, 1 when perfect (nanochat's CORE)."""
    return (acc - chance) / (1 - chance) if chance < 1 else 0.0


def score_task(
    model: nn.Module,
    tokenizer: Any,
    task: Task,
    *,
    shots: int = 0,
    seed: int = FEWSHOT_SEED,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    quiet: bool = False,
    prefix_reuse: bool | None = None,
) -> dict[str, Any]:
    """Score every item of `task` (see `task_result` for the keys; "items" holds per-item
    log-likelihoods and predictions)."""
    require_causal(model)
    pairs = item_pairs(tokenizer, task.items, shots, seed)
    lls = choice_loglikelihoods(
        model,
        group_pairs(task, pairs),
        batch_size=batch_size,
        device=device,
        desc=task.name,
        quiet=quiet,
        prefix_reuse=prefix_reuse,
    )
    res = task_result(task, lls, shots)
    res.update(truncation(task, pairs, model.cfg.block_size))
    return res


def truncation(task: Task, pairs: Sequence[Pair], block: int) -> dict[str, int]:
    """Items whose context was cut from the left to fit the window (as lm-eval cuts it),
    and items with a choice longer than the window (only its tail scored)."""
    ctx_cut = choice_cut = k = 0
    for item in task.items:
        mine = pairs[k : k + len(item.choices)]
        k += len(item.choices)
        ctx_cut += any(len(c) + len(x) > block + 1 for c, x in mine)
        choice_cut += any(len(x) > block for _, x in mine)
    return {"context_truncated": ctx_cut, "choice_truncated": choice_cut}


def summary(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One line over several tasks: mean chance-centred score (by acc and by acc_norm)."""
    n = max(1, len(results))
    return {
        "summary": True,
        "tasks": [r["task"] for r in results],
        "centered": sum(r["centered"] for r in results) / n,
        "centered_norm": sum(r["centered_norm"] for r in results) / n,
        "acc": sum(r["acc"] for r in results) / n,
        "chance": sum(r["chance"] for r in results) / n,
    }
