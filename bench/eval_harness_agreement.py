#!/usr/bin/env python
"""Benchmark: llmtrain's multiple-choice scores against lm-evaluation-harness on whole tasks.

A trained run is exported to Hugging Face format (`export_hf`, logit parity checked), then
each task file is scored twice, zero-shot: by `llmtrain.eval.multiple_choice.score_task` on
the run's own model, and by lm-eval 0.4's `HFLM` on the exported directory through a local
task definition (`llmtrain.eval.harness`). Reported per task: items, the largest per-choice
log-likelihood difference, acc / acc_norm / acc_bytes from both, and both wall times. Items
with a choice longer than the model's window are left out (lm-eval asserts on them) and
counted.
Agreement = max |Δll| <= 1e-4 and identical accuracies.

Usage: python bench/eval_harness_agreement.py RUN [--tasks FILE[,FILE]] [--limit N]
Default tasks: ../shared/data/eval/arc/ARC-Easy-Dev.jsonl and ../shared/data/eval/piqa.
The last line is one JSON object with all figures.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

from eval_common import eval_parser, load_run, print_table

COLUMNS = [
    ("task", "task", "<16", "{:<16}"),
    ("n", "n", ">6", "{:>6}"),
    ("max_abs_ll_diff", "max|Δll|", ">11", "{:>11.2e}"),
    ("acc", "acc", ">8", "{:>8.4f}"),
    ("lm_eval_acc", "lm-eval", ">9", "{:>9.4f}"),
    ("acc_norm", "acc_norm", ">10", "{:>10.4f}"),
    ("lm_eval_acc_norm", "lm-eval", ">9", "{:>9.4f}"),
    ("chance", "chance", ">8", "{:>8.4f}"),
    ("ours_sec", "ours s", ">8", "{:>8.1f}"),
    ("lm_eval_sec", "lm-eval s", ">10", "{:>10.1f}"),
]


def main() -> int:
    from llmtrain.eval.harness import compare, harness_scores, within_window
    from llmtrain.eval.multiple_choice import score_task
    from llmtrain.eval.tasks import load_task
    from llmtrain.export import export_hf

    ap = eval_parser(__doc__)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    loaded = load_run(args)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        export_hf(loaded.model, tmp, loaded.tokenizer)
        for path in args.tasks.split(","):
            task = load_task(path, limit=args.limit)
            block = loaded.config.model.block_size
            task, dropped = within_window(task, loaded.tokenizer, block)
            t0 = time.perf_counter()
            ours = score_task(
                loaded.model, loaded.tokenizer, task, batch_size=args.batch_size, quiet=True
            )
            t1 = time.perf_counter()
            theirs = harness_scores(tmp, task, batch_size=args.batch_size)
            t2 = time.perf_counter()
            row = compare(ours, theirs)
            row |= {"chance": ours["chance"], "ours_sec": t1 - t0, "lm_eval_sec": t2 - t1}
            row["left_out_long_choice"] = dropped
            rows.append(row)
    print_table(rows, COLUMNS)
    agree = all(r["max_abs_ll_diff"] <= 1e-4 and r["same_accuracy"] for r in rows)
    print(json.dumps({"run": args.run, "step": loaded.step, "agree": agree, "tasks": rows}))
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
