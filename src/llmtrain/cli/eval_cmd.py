"""`llmtrain eval CHECKPOINT_OR_RUN --data DATA_DIR`: the run's own objective on a prepared
split, printed as JSON — its loss and metrics (masked-token accuracy for MLM, span accuracy
for T5, RTD AUC for ELECTRA, sentence accuracy for SOP/NSP), and perplexity and bits per byte
for next-token objectives. With --tasks/--generate/--text/--all-checkpoints: benchmarks
(`eval_suite`)."""

from __future__ import annotations

import argparse
import json

from llmtrain.cli import eval_suite
from llmtrain.cli.common import add_verify_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="evaluate a checkpoint on a prepared split", description=__doc__
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT_OR_RUN")
    p.add_argument("--data", help="DATA_DIR (default: the one the run was trained on)")
    p.add_argument("--split", default="val", choices=["val", "train"])
    p.add_argument("--max-tokens", type=int, default=0, help="evaluate at most N tokens (0 = all)")
    p.add_argument(
        "--batch-size",
        type=int,
        help="sequences per forward (default: the run's micro-batch, so masked objectives draw "
        "the same fixed masks as the run's own val evals)",
    )
    p.add_argument(
        "--precision",
        metavar="{auto,fp32,bf16,fp16}",
        help="autocast precision (default: the run's train.precision on this device, so the "
        "run's own val numbers are repeated; bf16 under auto on CPUs with AVX512-BF16/AMX)",
    )
    p.add_argument(
        "--tune-decision",
        choices=["macro_f1", "weighted_f1", "accuracy"],
        help="a fine-tuned classifier: tune its decision on val now (saved as decision.json, "
        "used by predict) and print the plain argmax figures beside the tuned ones",
    )
    eval_suite.add_arguments(p)
    add_verify_arg(p)  # --no-verify
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if eval_suite.wants_suite(args):
        return eval_suite.run(args)
    from llmtrain.api import evaluate

    res = evaluate(
        args.checkpoint,
        data=args.data,
        split=args.split,
        max_tokens=args.max_tokens,
        batch_size=args.batch_size,
        precision=args.precision,
        verify=not args.no_verify,
        tune_decision=args.tune_decision,
    )
    print(json.dumps(res, indent=2))
    return 0
