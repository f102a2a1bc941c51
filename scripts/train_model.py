#!/usr/bin/env python
r"""Seed-compatible training entry point (thin shell over `llmtrain train`).

    python scripts/train_model.py --config configs/training_config.json \
        --model_config configs/model_config.json --data_path data/processed/ \
        --output_dir models/checkpoints/ --num_gpus 8 --gradient_accumulation_steps 16 \
        --batch_size_per_gpu 4

The flags map onto the run config: micro_batch_size = batch_size_per_gpu and the GLOBAL batch
= batch_size_per_gpu x gradient_accumulation_steps x num_gpus. Asking for more GPUs than the
machine has keeps that global batch (so the learning dynamics stay the same) by accumulating
more micro-batches in one process, with a warning.
"""

from __future__ import annotations

import argparse
import sys

from llmtrain.cli.main import main as llmtrain_main


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config", action="append", default=[], help="training config JSON")
    p.add_argument("--model_config", action="append", default=[], help="model config JSON")
    p.add_argument("--data_path", required=True, help="prepared data directory")
    p.add_argument("--output_dir", required=True, help="run directory")
    p.add_argument("--num_gpus", type=int, default=None)
    p.add_argument("--gradient_accumulation_steps", type=int, default=None)
    p.add_argument("--batch_size_per_gpu", type=int, default=None)
    p.add_argument("--max_steps", type=int, default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    return p.parse_args(argv)


def batch_overrides(args: argparse.Namespace, gpus_present: int) -> list[str]:
    """--set overrides derived from the seed's batch flags (empty when none were given)."""
    if args.batch_size_per_gpu is None and args.gradient_accumulation_steps is None:
        return []
    micro = args.batch_size_per_gpu or 1
    accum = args.gradient_accumulation_steps or 1
    wanted = args.num_gpus or 1
    global_batch = micro * accum * wanted
    if wanted > gpus_present:
        where = f"{gpus_present} GPU(s)" if gpus_present else "no GPU"
        print(
            f"warning: --num_gpus {wanted} asked for but this machine has {where}; running "
            f"in 1 process on {'the GPU' if gpus_present else 'the CPU'} and keeping the "
            f"global batch of {global_batch} sequences by accumulating "
            f"{global_batch // micro} micro-batches of {micro}",
            file=sys.stderr,
        )
    return [f"train.batch_size={global_batch}", f"train.micro_batch_size={micro}"]


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse(argv)
    cli = ["train", "--data", args.data_path, "--out", args.output_dir]
    for f in [*args.model_config, *args.config]:
        cli += ["--config", f]
    overrides = batch_overrides(args, torch.cuda.device_count())
    if args.num_gpus is not None:
        overrides.append(f"distributed.num_gpus={args.num_gpus}")
    if args.max_steps is not None:
        overrides.append(f"train.max_steps={args.max_steps}")
    for o in [*overrides, *args.overrides]:
        cli += ["--set", o]
    if args.resume:
        cli.append("--resume")
    return llmtrain_main(cli)


if __name__ == "__main__":
    sys.exit(main())
