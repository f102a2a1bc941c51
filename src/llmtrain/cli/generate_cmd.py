"""`llmtrain generate CHECKPOINT_OR_RUN --prompt TEXT`: streams sampled text to stdout."""

from __future__ import annotations

import argparse
import sys

from llmtrain.cli.common import add_verify_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate text from a trained model", description=__doc__)
    p.add_argument("checkpoint", metavar="CHECKPOINT_OR_RUN")
    p.add_argument("--prompt", default="", help="text to continue (empty = start of a document)")
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--num-samples", type=int, default=1)
    add_verify_arg(p)  # --no-verify
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llmtrain.api import generate, load
    from llmtrain.generation import check_sampling_args

    check_sampling_args(args.temperature, args.top_k, args.top_p)  # before any output
    loaded = load(args.checkpoint, verify=not args.no_verify)

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    for i in range(args.num_samples):
        if args.num_samples > 1:
            print(f"--- sample {i + 1} ---")
        generate(
            args.checkpoint,
            args.prompt,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            seed=None if args.seed is None else args.seed + i,
            on_text=write,
            model=loaded,
        )
        sys.stdout.write("\n")
    return 0
