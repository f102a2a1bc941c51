#!/usr/bin/env python
"""Seed-compatible monitoring entry point (thin shell over `llmtrain monitor`).

    python scripts/monitor_training.py --log_dir logs/training_logs/ \
        --checkpoint_dir models/checkpoints/

--log_dir is a run directory (the --out of training, holding metrics.jsonl) or a folder of
runs; --checkpoint_dir is where the checkpoints are (default: LOG_DIR/checkpoints). On a
terminal it shows the live dashboard until Ctrl-C; otherwise it prints one snapshot.
--report FILE.html also writes the HTML report, --once never follows.
"""

from __future__ import annotations

import argparse
import sys

from llmtrain.cli.main import main as llmtrain_main


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--log_dir", required=True, help="run directory with metrics.jsonl")
    p.add_argument("--checkpoint_dir", default=None, help="checkpoint directory")
    p.add_argument("--report", default=None, help="also write this HTML report")
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    p.add_argument("--follow", action="store_true", help="follow even when not on a terminal")
    p.add_argument("--interval", type=float, default=1.0)
    return p.parse_args(argv)


def to_cli(args: argparse.Namespace, is_tty: bool) -> list[str]:
    argv = ["monitor", args.log_dir, "--interval", str(args.interval)]
    if args.checkpoint_dir:
        argv += ["--checkpoint-dir", args.checkpoint_dir]
    if args.report:
        argv += ["--report", args.report]
    if args.follow or (is_tty and not args.once and not args.report):
        argv.append("--follow")
    return argv


if __name__ == "__main__":
    sys.exit(llmtrain_main(to_cli(parse(), sys.stdout.isatty())))
