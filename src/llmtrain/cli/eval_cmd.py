"""`llmtrain eval CHECKPOINT_OR_RUN --data DATA_DIR`: loss, perplexity and bits per byte on the
val split, printed as JSON; with --tasks/--generate/--text/--all-checkpoints, benchmarks
(see `eval_suite`)."""

from __future__ import annotations

import argparse
import json

from llmtrain.cli import eval_suite


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="evaluate a checkpoint on a prepared split", description=__doc__
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT_OR_RUN")
    p.add_argument("--data", help="DATA_DIR (default: the one the run was trained on)")
    p.add_argument("--split", default="val", choices=["val", "train"])
    p.add_argument("--max-tokens", type=int, default=0, help="evaluate at most N tokens (0 = all)")
    p.add_argument("--batch-size", type=int, default=16)
    eval_suite.add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if eval_suite.wants_suite(args):
        return eval_suite.run(args)
    from llmtrain.checkpoint.inference import load_trained
    from llmtrain.data.loader import TokenWindows
    from llmtrain.data.shards import open_split, read_manifest
    from llmtrain.errors import DataError
    from llmtrain.eval import evaluate_split
    from llmtrain.train.precision import resolve_precision

    loaded = load_trained(args.checkpoint)
    data = args.data or loaded.config.data.path
    manifest = read_manifest(data)
    vocab = int(manifest["tokenizer"]["vocab_size"])
    if vocab > loaded.config.model.vocab_size:
        raise DataError(
            f"{data} uses a tokenizer with {vocab} tokens but the model knows "
            f"{loaded.config.model.vocab_size}; evaluate on data prepared with the run's tokenizer"
        )
    prec = resolve_precision("fp32", "auto", "off")
    loaded.model.to(prec.device)
    windows = TokenWindows(open_split(data, args.split), loaded.config.model.block_size, args.split)
    res = evaluate_split(
        loaded.model,
        windows,
        manifest["splits"][args.split],
        max_tokens=args.max_tokens or 1 << 62,
        micro_batch_size=args.batch_size,
        device=prec.device,
    )
    print(
        json.dumps(
            {
                "checkpoint": str(loaded.checkpoint),
                "step": loaded.step,
                "data": str(data),
                "split": args.split,
                **res,
            },
            indent=2,
        )
    )
    return 0
