"""`llmtrain train --data DATA_DIR --out RUN_DIR [--config F] [--preset P] [--set k=v]
[--resume | --resume-from STEP] [--no-verify] [--init-from HF_DIR]`."""

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
    from llmtrain.errors import ConfigError
    from llmtrain.train.config import load_run_config
    from llmtrain.train.trainer import Trainer

    out = Path(args.out)
    resume = args.resume or args.resume_from is not None
    base = None
    if resume and (out / "config.json").is_file():
        base = load_json_file(out / "config.json")  # the run's own config; flags may extend it
    if args.init_from and base is None:  # the HF config, below --preset/--config/--set
        from llmtrain.models.hf_interop import hf_run_defaults

        base = hf_run_defaults(args.init_from)
    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.path={json.dumps(str(args.data))}")
    if args.max_time:
        overrides.append(f"train.max_time_sec={parse_duration(args.max_time)}")
    if args.auto_micro_batch:
        overrides.append("train.auto_micro_batch=true")
    cfg = load_run_config(args.config, args.preset, overrides, base=base)
    check_run_dir(out)  # after the config: a bad value leaves nothing behind
    if not cfg.data.path:
        raise ConfigError(
            "no data: pass --data DATA_DIR (a directory written by `llmtrain prepare`)"
        )
    trainer = Trainer(
        cfg,
        out,
        resume=resume,
        show_progress=not args.quiet,
        resume_from=args.resume_from,
        verify=not args.no_verify,
    )
    cfg = trainer.cfg  # resolved: the micro-batch for this world size, the data's vocabulary
    t, world = cfg.train, trainer.dist.world_size
    say = print if trainer.dist.is_rank0 else (lambda *a, **k: None)
    say(
        f"model: {cfg.model.n_layer} layers, {cfg.model.n_embd} dims, "
        f"{sum(p.numel() for p in trainer.model.parameters()) / 1e6:.2f}M parameters; "
        f"device {trainer.prec.device}, precision {trainer.prec.name}"
    )
    say(
        f"batch: {t.batch_size} sequences/step = {t.micro} micro-batch x {trainer.accum} "
        f"accumulation x {world} process{'es' if world > 1 else ''}"
        f"{f' ({cfg.distributed.strategy})' if world > 1 else ''}; "
        f"{t.batch_size * cfg.model.block_size:,} tokens/step"
    )
    result = trainer.fit()
    say(json.dumps({"run_dir": str(out), **result}, indent=2))
    say(
        f"outputs: config {out / 'config.json'}, metrics {out / 'metrics.jsonl'}, "
        f"checkpoints {out / 'checkpoints'}"
    )
    return trainer.stop.exit_code  # 0 done (or time budget spent), 75 stopped by a signal


def check_run_dir(out: Path) -> None:
    """--out must be a directory we can create and write (not a file, a device or /proc)."""
    from llmtrain.errors import ConfigError

    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory; choose a new run directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ConfigError(
            f"--out {out} is not a writable directory ({e.strerror or e}); choose another path"
        ) from None


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
