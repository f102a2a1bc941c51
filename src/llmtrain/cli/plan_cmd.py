"""`llmtrain plan DATA_DIR (--minutes M | --gpu-hours H | --flops F) [--family gpt2|llama]
[--device auto|cpu|cuda] [--gpu NAME] [--seq T] [--memory-gb G] [--out plan.json]`: a complete
run config from a budget, printed with its reasoning; `llmtrain train --config plan.json`
(or `llmtrain train --data DATA_DIR --plan 10m`) runs it."""

from __future__ import annotations

import argparse
import json

from llmtrain.cli.common import positive_int


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan", help="a run config (model, tokens, batch, LR, schedule) from a budget",
        description=__doc__,
    )  # fmt: skip
    p.add_argument("data", help="DATA_DIR written by `llmtrain prepare`")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--minutes", type=positive_float, help="wall-clock minutes on this machine")
    g.add_argument("--gpu-hours", type=positive_float, help="GPU-hours (with --gpu NAME)")
    g.add_argument("--flops", type=positive_float, help="training compute in FLOPs, e.g. 1e17")
    p.add_argument("--family", default="gpt2", choices=["gpt2", "llama"])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--gpu", help="plan for a named GPU not on this machine (h100, a100, h200)")
    p.add_argument("--seq", type=positive_int, help="context length (default: 256 CPU, 1024 GPU)")
    p.add_argument("--memory-gb", type=positive_float, help="memory the run may use")
    p.add_argument("--out", help="write the config here (JSON, for `llmtrain train --config`)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llmtrain.api import plan

    result = plan(
        args.data, minutes=args.minutes, gpu_hours=args.gpu_hours, flops=args.flops,
        family=args.family, device=args.device, gpu=args.gpu, seq=args.seq,
        memory_gb=args.memory_gb, out=args.out,
    )  # fmt: skip
    for line in result.reasoning:
        print(f"- {line}")
    print("memory estimate (MiB): " + ", ".join(f"{k} {v:,.1f}" for k, v in result.memory.table()))
    if args.out:
        print(f"config written to {args.out}; run it: llmtrain train --config {args.out} --out RUN")
    else:
        print(json.dumps(result.config, indent=2))
    return 0
