"""`llmtrain train --data DATA_DIR --out RUN_DIR [--config F] [--preset P] [--set k=v]
[--resume | --resume-from STEP] [--no-verify] [--init-from HF_DIR]`."""

from __future__ import annotations

import argparse

from llmtrain.cli.common import add_config_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a model on a prepared data directory", description=__doc__
    )
    p.add_argument("--data", help="DATA_DIR written by `llmtrain prepare`")
    p.add_argument("--out", required=True, help="run directory for config, metrics, checkpoints")
    add_config_args(p)
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the latest checkpoint in --out (exactly where it stopped); it "
        "is verified against its checksums first",
    )
    p.add_argument(
        "--resume-from",
        metavar="STEP",
        help="continue from the checkpoint of this step in --out (or a checkpoint directory), "
        "e.g. when the latest one is damaged; implies --resume",
    )
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="load the checkpoint even when its checksums do not match (a hand-edited or "
        "damaged one); the last checkpoint that does verify is never pruned",
    )
    p.add_argument(
        "--init-from",
        metavar="HF_DIR",
        help="continue pre-training a local Hugging Face model (config.json + safetensors: "
        "GPT-2, Llama, Mixtral, BERT, ELECTRA, T5); its config.json sets the model section",
    )
    p.add_argument(
        "--plan",
        metavar="BUDGET",
        help="plan the run from a budget (10m, 2h, 1e17flops; see `llmtrain plan`) and train "
        "it; --config/--set/--preset still override the planned values",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--max-time",
        help="training-time budget (e.g. 3600, 90m, 2h): checkpoint and stop when spent "
        "(sets train.max_time_sec); SIGTERM/SIGUSR1 also checkpoint and stop (exit 75)",
    )
    p.add_argument(
        "--auto-micro-batch",
        action="store_true",
        help="use the largest micro-batch that fits (OOM back-off on CUDA, a memory budget on "
        "CPU); accumulation keeps train.batch_size (sets train.auto_micro_batch)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llmtrain.api import train

    run_ = train(
        args.data,
        args.out,
        preset=args.preset,
        config=args.config,
        overrides=args.overrides,
        resume=args.resume,
        resume_from=args.resume_from,
        verify=not args.no_verify,
        init_from=args.init_from,
        max_time=parse_duration(args.max_time) if args.max_time else None,
        auto_micro_batch=args.auto_micro_batch,
        quiet=args.quiet,
        plan=args.plan,
    )
    return run_.exit_code  # 0 done (or time budget spent), 75 stopped by a signal


def parse_duration(text: str) -> float:
    """Seconds from '3600', '90s', '90m', '2h' or '1.5h'."""
    from llmtrain.errors import ConfigError

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    t = text.strip().lower()
    try:
        return float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        raise ConfigError(
            f"--max-time {text!r}: expected seconds or a number with s/m/h/d"
        ) from None
