"""`llmtrain eval CHECKPOINT_OR_RUN --data DATA_DIR`: the run's own objective on a prepared
split, printed as JSON — its loss and metrics (masked-token accuracy for MLM, span accuracy
for T5, RTD AUC for ELECTRA, sentence accuracy for SOP/NSP), and perplexity and bits per byte
for next-token objectives. With --tasks/--generate/--text/--all-checkpoints: benchmarks
(`eval_suite`)."""

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
    from pathlib import Path

    from llmtrain.checkpoint.inference import load_trained
    from llmtrain.data.loader import TokenWindows
    from llmtrain.data.shards import open_split, read_manifest
    from llmtrain.errors import DataError
    from llmtrain.eval import evaluate
    from llmtrain.objectives import build_objective
    from llmtrain.train.precision import resolve_precision

    loaded = load_trained(args.checkpoint)
    cfg = loaded.config
    data = args.data or cfg.data.path
    manifest = read_manifest(data)
    tok = manifest["tokenizer"]
    vocab = int(tok["vocab_size"])
    objective = build_objective(  # the run's objective, as the trainer built it
        cfg.train.objective,
        cfg.objective,
        vocab,
        cfg.model.block_size,
        cfg.train.seed,
        Path(data) / tok.get("path", "tokenizer"),
    )
    if vocab + objective.extra_vocab > cfg.model.vocab_size:
        raise DataError(
            f"{data} uses a tokenizer with {vocab} tokens but the model knows "
            f"{cfg.model.vocab_size - objective.extra_vocab}; evaluate on data prepared with "
            "the run's tokenizer"
        )
    prec = resolve_precision("fp32", "auto", "off")
    loaded.model.to(prec.device)
    seq = cfg.model.block_size
    windows = TokenWindows(open_split(data, args.split), seq, args.split)
    res = evaluate(
        loaded.model,
        objective,
        windows,
        max_items=max(1, args.max_tokens // seq) if args.max_tokens else None,
        micro_batch_size=args.batch_size,
        device=prec.device,
        split=manifest["splits"][args.split],
    )
    head = {"checkpoint": str(loaded.checkpoint), "step": loaded.step, "data": str(data)}
    head |= {"split": args.split, "objective": cfg.train.objective}
    print(json.dumps({**head, **res}, indent=2))
    return 0
