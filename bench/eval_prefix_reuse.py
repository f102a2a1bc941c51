#!/usr/bin/env python
"""Benchmark: multiple-choice scoring with and without shared-prefix reuse.

`choice_loglikelihoods(prefix_reuse=True)` runs each question's context once through a KV
cache its choices share; `prefix_reuse=False` runs every (context, choice) row whole, batched
longest first (lm-eval's way); `None` (the default) chooses per question. Both are timed on the same items, interleaved over `--rounds`,
and their log-likelihoods compared. Reported per task and shot count: items, the median
seconds of each path, the speed-up and the largest |Δ log-likelihood|.

Usage: python bench/eval_prefix_reuse.py RUN [--tasks FILE[,FILE]] [--limit 200] [--shots 0,2]
The last line is one JSON object with all figures.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

from eval_common import eval_parser, load_run, print_table

COLUMNS = [
    ("task", "task", "<14", "{:<14}"),
    ("shots", "shots", ">6", "{:>6}"),
    ("n", "n", ">6", "{:>6}"),
    ("reuse_sec", "reuse s", ">9", "{:>9.2f}"),
    ("padded_sec", "padded s", ">10", "{:>10.2f}"),
    ("speedup", "speed-up", ">10", "{:>9.2f}x"),
    ("auto_sec", "auto s", ">8", "{:>8.2f}"),
    ("auto_speedup", "auto x", ">8", "{:>7.2f}x"),
    ("max_abs_ll_diff", "max|Δll|", ">11", "{:>11.1e}"),
]


def main() -> int:
    from llmtrain.eval.multiple_choice import (
        FEWSHOT_SEED,
        choice_loglikelihoods,
        group_pairs,
        item_pairs,
    )
    from llmtrain.eval.tasks import load_task

    ap = eval_parser(__doc__, limit=200)
    ap.add_argument("--shots", default="0,2")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    loaded = load_run(args)
    rows = []
    for path in args.tasks.split(","):
        task = load_task(path, limit=args.limit)
        for shots in (int(s) for s in args.shots.split(",")):
            pairs = item_pairs(loaded.tokenizer, task.items, shots, FEWSHOT_SEED)
            groups = group_pairs(task, pairs)
            modes = (True, None, False)  # always, auto (the default), never
            times: dict[bool | None, list[float]] = {m: [] for m in modes}
            lls: dict[bool | None, list[float]] = {}
            for _ in range(args.rounds):
                for reuse in modes:
                    t0 = time.perf_counter()
                    lls[reuse] = choice_loglikelihoods(
                        loaded.model, groups, quiet=True, prefix_reuse=reuse
                    )
                    times[reuse].append(time.perf_counter() - t0)
            diff = max(abs(a - b) for a, b in zip(lls[True], lls[False], strict=True))
            fast, slow = statistics.median(times[True]), statistics.median(times[False])
            auto = statistics.median(times[None])
            rows.append(
                {
                    "task": task.name,
                    "shots": shots,
                    "n": len(task.items),
                    "reuse_sec": fast,
                    "padded_sec": slow,
                    "auto_sec": auto,
                    "speedup": slow / fast,
                    "auto_speedup": slow / auto,
                    "max_abs_ll_diff": diff,
                }
            )
    print_table(rows, COLUMNS)
    print(json.dumps({"run": args.run, "step": loaded.step, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
