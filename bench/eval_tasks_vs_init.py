#!/usr/bin/env python
"""Benchmark: a trained run's multiple-choice accuracy beside the same model at step 0 and
beside chance.

The step-0 model is rebuilt from the run's config with the trainer's seed
(`torch.manual_seed(train.seed)` then `build_model`, as `Trainer.__init__` does), so it is the
exact initialisation the run started from. Both are scored zero-shot with
`llmtrain.eval.multiple_choice.score_task` on each task file. Reported per task: items, chance,
acc / acc_norm / acc_bytes of both, the standard error of acc, and seconds.

Usage: python bench/eval_tasks_vs_init.py RUN [--tasks FILE[,FILE]] [--limit N]
Default tasks: ../shared/data/eval/arc/ARC-Easy-Dev.jsonl and ../shared/data/eval/piqa.
The last line is one JSON object with all figures.
"""

from __future__ import annotations

import json
import sys
import time

import torch
from eval_common import eval_parser, load_run, print_table

KEYS = ("acc", "acc_norm", "acc_bytes")
COLUMNS = [
    ("task", "task", "<14", "{:<14}"),
    ("model", "model", "<11", "{:<11}"),
    ("n", "n", ">6", "{:>6}"),
    ("chance", "chance", ">8", "{:>8.4f}"),
    ("acc", "acc", ">8", "{:>8.4f}"),
    ("acc_stderr", "±se", ">7", "{:>7.4f}"),
    ("acc_norm", "acc_norm", ">10", "{:>10.4f}"),
    ("acc_bytes", "acc_bytes", ">11", "{:>11.4f}"),
    ("sec", "sec", ">7", "{:>7.1f}"),
]


def main() -> int:
    from llmtrain.eval.multiple_choice import score_task
    from llmtrain.eval.tasks import load_task
    from llmtrain.models import build_model

    ap = eval_parser(__doc__)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    loaded = load_run(args)
    torch.manual_seed(loaded.config.train.seed)
    init = build_model(loaded.config.model).eval()
    models = {f"step {loaded.step}": loaded.model, "step 0": init}
    rows = []
    for path in args.tasks.split(","):
        task = load_task(path, limit=args.limit)
        for label, model in models.items():
            t0 = time.perf_counter()
            res = score_task(model, loaded.tokenizer, task, batch_size=args.batch_size, quiet=True)
            res.pop("items")
            rows.append({"model": label, **res, "sec": time.perf_counter() - t0})
    print_table(rows, COLUMNS)
    print(json.dumps({"run": args.run, "step": loaded.step, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
