"""`llmtrain export CHECKPOINT --format hf --out DIR [--target NAME]`:
write a run (or one checkpoint) as a Hugging Face directory with its tokenizer, and verify
both: logits against transformers, token ids against AutoTokenizer."""

from __future__ import annotations

import argparse
import json

from llmtrain.cli.common import LazyChoices, add_verify_arg


def _targets() -> list[str]:
    from llmtrain.models.hf import TARGETS

    return list(TARGETS)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a trained model (Hugging Face)", description=__doc__)
    p.add_argument("checkpoint", help="RUN_DIR (latest checkpoint) or a checkpoint directory")
    p.add_argument("--format", choices=["hf"], default="hf")
    p.add_argument("--out", required=True, help="directory to write")
    p.add_argument(
        "--target",
        default=None,
        choices=LazyChoices(_targets),
        metavar="NAME",
        help="HF architecture, one of %(choices)s (default: model.hf_target, else inferred "
        "from the options); checked against the model's options. ELECTRA also writes its "
        "generator/",
    )
    p.add_argument("--no-tokenizer", action="store_true", help="write the weights only")
    add_verify_arg(p)  # --no-verify
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llmtrain.api import export

    res = export(
        args.checkpoint,
        args.out,
        target=args.target,
        tokenizer=not args.no_tokenizer,
        verify=not args.no_verify,
    )
    print(f"max abs logit difference vs transformers: {res['max_abs_diff']:.3g}")
    if "generator_max_abs_diff" in res:
        print(f"  ELECTRA generator (generator/): {res['generator_max_abs_diff']:.3g}")
    print(json.dumps({"out": args.out, **res}))
    return 0
