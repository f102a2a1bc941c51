"""`llmtrain finetune --from RUN_OR_HF_DIR --task classify|sft --data FILE [--val FILE]
[--test FILE] [--text-field F] [--text-pair-field F] [--label-field F] [--lora-rank N]
--out RUN [--set key=value ...]`: fine-tune a pre-trained model (full or LoRA) with the same
training loop, checkpoints, resume and monitoring as pre-training. Every finetune.* key is
listed by `--set finetune.KEY=...` errors; see also `--help` below."""

from __future__ import annotations

import argparse
import json

from llmtrain.cli.common import add_set_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune",
        help="fine-tune a run or a local HF model: classification or instruction/chat SFT",
        description=__doc__,
        epilog=KEYS_EPILOG,
        formatter_class=_KeysHelpFormatter,
    )
    p.add_argument(
        "--from",
        dest="base",
        required=True,
        metavar="RUN_OR_HF_DIR",
        help="a llmtrain run/checkpoint directory or a local Hugging Face model directory",
    )
    p.add_argument(
        "--task",
        required=True,
        choices=["classify", "sft"],
        help="classify: a label per text (CSV/TSV/JSONL/Parquet); sft: messages or "
        "instruction/input/output JSONL, loss on assistant tokens only",
    )
    p.add_argument("--data", required=True, metavar="FILE", help="training file")
    p.add_argument(
        "--val",
        metavar="FILE",
        help="validation file (default: a stratified "
        "finetune.val_fraction of --data, seed finetune.split_seed)",
    )
    p.add_argument("--test", metavar="FILE", help="test file (scored with the best checkpoint)")
    p.add_argument("--text-field", metavar="F", help="text column (default 'text')")
    p.add_argument("--text-pair-field", metavar="F", help="second text column, for pairs")
    p.add_argument("--label-field", metavar="F", help="label column (default 'label')")
    p.add_argument(
        "--lora-rank",
        type=int,
        metavar="N",
        help="train LoRA adapters of rank N (+ the head) instead of every weight",
    )
    p.add_argument(
        "--epochs", type=float, help="passes over the training set (sets train.max_steps)"
    )
    p.add_argument(
        "--out", required=True, help="run directory (config, metrics, checkpoints, report)"
    )
    add_set_arg(
        p,
        "override a key, e.g. --set train.lr=5e-5 --set finetune.class_weights="
        "'\"balanced\"' --set finetune.focal_gamma=2 --set finetune.oversample=true "
        "--set finetune.patience=3 --set finetune.best_metric='\"macro_f1\"' "
        "--set finetune.head.pooling='\"mean\"' --set finetune.lora.targets='[\"qkv\"]'",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


KEYS_EPILOG = "<the finetune.* keys>"


class _KeysHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Lists the finetune.* keys only when help is printed: they come from configs that
    import torch, which every other command (`llmtrain prepare`: ~200 MB RSS) should not pay."""

    def add_text(self, text: str | None) -> None:
        super().add_text(keys_help() if text == KEYS_EPILOG else text)


def keys_help() -> str:
    """Every finetune.* key with its default, for --help (set them with --set)."""
    import dataclasses

    from llmtrain.finetune.config import FinetuneConfig

    lines = ["finetune.* keys (--set finetune.KEY=VALUE; JSON values):"]
    for f in dataclasses.fields(FinetuneConfig):
        value = getattr(FinetuneConfig(), f.name)
        if dataclasses.is_dataclass(value):
            for g in dataclasses.fields(value):
                lines.append(f"  finetune.{f.name}.{g.name} = {json.dumps(getattr(value, g.name))}")
        else:
            lines.append(f"  finetune.{f.name} = {json.dumps(value)}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from llmtrain.finetune.api import finetune

    overrides = list(args.overrides)
    if args.epochs is not None:
        overrides.append(f"finetune.epochs={args.epochs}")
    res = finetune(
        args.base,
        task=args.task,
        data=args.data,
        out=args.out,
        val=args.val,
        test=args.test,
        text_field=args.text_field,
        text_pair_field=args.text_pair_field,
        label_field=args.label_field,
        lora_rank=args.lora_rank,
        overrides=overrides,
        resume=args.resume,
        show_progress=not args.quiet,
    )
    metrics = res.pop("metrics", {})
    short = {
        s: {k: m[k] for k in ("accuracy", "macro_f1", "roc_auc", f"{s}_loss") if k in m}
        for s, m in metrics.items()
    }
    keep = ("run_dir", "step", "elapsed_sec", "best_checkpoint")
    print(json.dumps({**{k: res[k] for k in keep if k in res}, "metrics": short}, indent=2))
    return 0
