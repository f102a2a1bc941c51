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

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "eval"
DEFAULT_TASKS = [SHARED / "arc" / "ARC-Easy-Dev.jsonl", SHARED / "piqa"]


def main() -> int:
    from llmtrain.checkpoint.inference import load_trained
    from llmtrain.eval.multiple_choice import (
        FEWSHOT_SEED,
        choice_loglikelihoods,
        group_pairs,
        item_pairs,
    )
    from llmtrain.eval.tasks import load_task

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--tasks", default=",".join(str(t) for t in DEFAULT_TASKS))
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--shots", default="0,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_trained(args.run)
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
    print(
        f"{'task':<14}{'shots':>6}{'n':>6}{'reuse s':>9}{'padded s':>10}{'speed-up':>10}"
        f"{'auto s':>8}{'auto x':>8}{'max|Δll|':>11}"
    )
    for r in rows:
        print(
            f"{r['task']:<14}{r['shots']:>6}{r['n']:>6}{r['reuse_sec']:>9.2f}"
            f"{r['padded_sec']:>10.2f}{r['speedup']:>9.2f}x{r['auto_sec']:>8.2f}"
            f"{r['auto_speedup']:>7.2f}x{r['max_abs_ll_diff']:>11.1e}"
        )
    print(json.dumps({"run": args.run, "step": loaded.step, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
