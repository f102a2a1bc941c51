"""`llmtrain train --data DATA_DIR --out RUN_DIR [--config F] [--preset P] [--set k=v] [--resume]`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from llmtrain.cli.common import add_config_args
from llmtrain.config import load_json_file


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
        help="continue from the latest checkpoint in --out (exactly where it stopped)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llmtrain.errors import ConfigError
    from llmtrain.train.config import load_run_config
    from llmtrain.train.trainer import Trainer

    out = Path(args.out)
    base = None
    if args.resume and (out / "config.json").is_file():
        base = load_json_file(out / "config.json")  # the run's own config; flags may extend it
    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.path={json.dumps(str(args.data))}")
    cfg = load_run_config(args.config, args.preset, overrides, base=base)
    if not cfg.data.path:
        raise ConfigError(
            "no data: pass --data DATA_DIR (a directory written by `llmtrain prepare`)"
        )
    trainer = Trainer(cfg, out, resume=args.resume, show_progress=not args.quiet)
    t = cfg.train
    print(
        f"model: {cfg.model.n_layer} layers, {cfg.model.n_embd} dims, "
        f"{sum(p.numel() for p in trainer.model.parameters()) / 1e6:.2f}M parameters; "
        f"device {trainer.prec.device}, precision {trainer.prec.name}"
    )
    print(
        f"batch: {t.batch_size} sequences/step = {t.micro} micro-batch x {trainer.accum} "
        f"accumulation x 1 process; {t.batch_size * cfg.model.block_size:,} tokens/step"
    )
    result = trainer.fit()
    print(json.dumps({"run_dir": str(out), **result}, indent=2))
    print(
        f"outputs: config {out / 'config.json'}, metrics {out / 'metrics.jsonl'}, "
        f"checkpoints {out / 'checkpoints'}"
    )
    return 0
