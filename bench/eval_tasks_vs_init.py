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

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "eval"
DEFAULT_TASKS = [SHARED / "arc" / "ARC-Easy-Dev.jsonl", SHARED / "piqa"]
KEYS = ("acc", "acc_norm", "acc_bytes")


def main() -> int:
    from llmtrain.checkpoint.inference import load_trained
    from llmtrain.eval.multiple_choice import score_task
    from llmtrain.eval.tasks import load_task
    from llmtrain.models import build_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--tasks", default=",".join(str(t) for t in DEFAULT_TASKS))
    ap.add_argument("--limit", type=int)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_trained(args.run)
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
    print(
        f"{'task':<14}{'model':<11}{'n':>6}{'chance':>8}{'acc':>8}{'±se':>7}"
        f"{'acc_norm':>10}{'acc_bytes':>11}{'sec':>7}"
    )
    for r in rows:
        print(
            f"{r['task']:<14}{r['model']:<11}{r['n']:>6}{r['chance']:>8.4f}{r['acc']:>8.4f}"
            f"{r['acc_stderr']:>7.4f}{r['acc_norm']:>10.4f}{r['acc_bytes']:>11.4f}{r['sec']:>7.1f}"
        )
    print(json.dumps({"run": args.run, "step": loaded.step, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
