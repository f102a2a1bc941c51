#!/usr/bin/env python
r"""Seed-compatible monitoring entry point (thin shell over `llmtrain monitor`).

    python scripts/monitor_training.py --log_dir logs/training_logs/ \
        --checkpoint_dir models/checkpoints/

--log_dir is a run directory (the --out of training, holding metrics.jsonl) or a folder of
runs; --checkpoint_dir is where the checkpoints are (default: LOG_DIR/checkpoints), or the
run directory holding them, as `train_model.py --output_dir` writes it (its metrics.jsonl is
used when --log_dir has none). On a terminal it shows the live dashboard until Ctrl-C;
otherwise it prints one snapshot. --report FILE.html also writes the HTML report (and prints
the snapshot), --once never follows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llmtrain.cli.main import main as llmtrain_main


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--log_dir", required=True, help="run directory with metrics.jsonl")
    p.add_argument("--checkpoint_dir", default=None, help="checkpoint (or run) directory")
    p.add_argument("--report", default=None, help="also write this HTML report")
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    p.add_argument("--follow", action="store_true", help="follow even when not on a terminal")
    p.add_argument("--interval", type=float, default=1.0)
    return p.parse_args(argv)


def resolve(args: argparse.Namespace) -> tuple[str, str | None]:
    """(run directory, checkpoint directory): a --checkpoint_dir that is a run directory
    (train_model.py's --output_dir) stands for its checkpoints/, and for the run itself when
    --log_dir holds no metrics."""
    log, ckpt = Path(args.log_dir), args.checkpoint_dir
    if ckpt is None:
        return str(log), None
    run = Path(ckpt)
    if (run / "checkpoints").is_dir():
        ckpt = str(run / "checkpoints")
        has_runs = (log / "metrics.jsonl").is_file() or any(log.glob("*/metrics.jsonl"))
        if not has_runs and (run / "metrics.jsonl").is_file():
            print(
                f"note: {log} holds no metrics.jsonl; monitoring the run in {run} (training "
                "writes its metrics beside its checkpoints/)",
                file=sys.stderr,
            )
            return str(run), ckpt
    return str(log), ckpt


def to_cli(args: argparse.Namespace, is_tty: bool) -> list[str]:
    """`llmtrain monitor` arguments of the snapshot or live dashboard (the report is written
    by its own call, see `main`)."""
    run, ckpt = resolve(args)
    argv = ["monitor", run, "--interval", str(args.interval)]
    if ckpt:
        argv += ["--checkpoint-dir", ckpt]
    if args.follow or (is_tty and not args.once and not args.report):
        argv.append("--follow")
    return argv


def main(argv: list[str] | None = None, is_tty: bool | None = None) -> int:
    args = parse(argv)
    cli = to_cli(args, sys.stdout.isatty() if is_tty is None else is_tty)
    if args.report:
        rc = llmtrain_main([*cli[:2], *cli[4:6], "--report", args.report])
        if rc:
            return rc
    return llmtrain_main(cli)


if __name__ == "__main__":
    sys.exit(main())
