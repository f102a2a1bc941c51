"""Benchmark tasks during training: `TaskEvaluator` reads `eval.tasks` once (capped at
`eval.max_items` items each), tokenises every (context, choice) pair once, and at each eval
returns flat metrics for metrics.jsonl, the trackers and the report:
`task_<name>/acc`, `task_<name>/acc_norm`, `task_<name>/chance` (one chart per task, the chance
line beside the curves) and `task_centered`, the mean chance-centred accuracy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from llmtrain.eval.config import EvalConfig
from llmtrain.eval.multiple_choice import (
    FEWSHOT_SEED,
    Pair,
    choice_loglikelihoods,
    group_pairs,
    item_pairs,
    task_result,
)
from llmtrain.eval.tasks import Task, load_task


class TaskEvaluator:
    """The tasks of `cfg`, tokenised with the run's tokenizer, scored on demand."""

    def __init__(self, cfg: EvalConfig, tokenizer: Any) -> None:
        self.cfg = cfg
        self.tasks: list[tuple[Task, list[list[Pair]]]] = []
        for path in cfg.tasks:  # bad files fail here, before the first training step
            task = load_task(path, cfg.format, cfg.max_items)
            pairs = item_pairs(tokenizer, task.items, cfg.shots, FEWSHOT_SEED)
            self.tasks.append((task, group_pairs(task, pairs)))

    def __call__(
        self,
        model: nn.Module,
        device: torch.device | str = "cpu",
        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> dict[str, float]:
        out: dict[str, float] = {}
        centred = []
        for task, groups in self.tasks:
            with autocast():
                lls = choice_loglikelihoods(
                    model, groups, batch_size=self.cfg.batch_size, device=device, quiet=True
                )
            res = task_result(task, lls, self.cfg.shots)
            key = f"task_{task.name}"
            out[f"{key}/acc"] = res["acc"]
            out[f"{key}/acc_norm"] = res["acc_norm"]
            out[f"{key}/chance"] = res["chance"]
            centred.append(res["centered"])
        if centred:
            out["task_centered"] = sum(centred) / len(centred)
        return out
