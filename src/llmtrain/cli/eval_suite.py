"""The benchmark side of `llmtrain eval RUN`: `--tasks` (multiple choice), `--generate`
(BLEU/chrF/ROUGE/exact match), `--text` (sliding-window perplexity, bits per byte) and
`--all-checkpoints` (the task scores of every kept checkpoint, plotted). One JSON object per
result on stdout, a summary line, and the outputs saved under `--out` (default RUN/eval)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("benchmarks (instead of the val split)")
    g.add_argument("--tasks", metavar="FILE[,FILE...]", help="multiple-choice task files")
    g.add_argument(
        "--format",
        default="auto",
        choices=["auto", "arc", "piqa", "hellaswag", "mc"],
        help="task file format (default: detected from the first row)",
    )
    g.add_argument("--shots", type=int, default=0, help="few-shot examples per question")
    g.add_argument("--limit", type=int, help="score at most N items per task")
    g.add_argument(
        "--generate",
        metavar="FILE",
        action="append",
        default=[],
        help='{"prompt", "reference"} JSONL: generate and score (repeatable)',
    )
    g.add_argument("--max-new-tokens", type=int, default=64)
    g.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    g.add_argument("--top-k", type=int)
    g.add_argument("--top-p", type=float)
    g.add_argument(
        "--stop",
        default="\n",
        help="cut outputs at this string (default: newline; '\\n' = newline, '' = never)",
    )
    g.add_argument(
        "--lang",
        default="auto",
        choices=["auto", "en", "zh"],
        help="metric tokenisation of generation tasks (auto: from the references)",
    )
    g.add_argument(
        "--text",
        metavar="FILE",
        nargs="+",
        default=[],
        help="perplexity and bits per byte of these files (sliding window)",
    )
    g.add_argument("--stride", type=int, help="sliding-window stride (default block_size/2)")
    g.add_argument(
        "--all-checkpoints",
        action="store_true",
        help="score --tasks on every kept checkpoint and plot the curve",
    )
    g.add_argument("--out", help="where scores and outputs go (default RUN/eval)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def wants_suite(args: argparse.Namespace) -> bool:
    return bool(args.tasks or args.generate or args.text or args.all_checkpoints)


def _spec(args: argparse.Namespace) -> Any:
    from llmtrain.errors import ConfigError
    from llmtrain.eval.suite import SuiteSpec

    if args.limit is not None and args.limit <= 0:
        raise ConfigError(f"--limit must be positive, got {args.limit}")
    if args.shots < 0:
        raise ConfigError(f"--shots must be >= 0, got {args.shots}")
    return SuiteSpec(
        tasks=[t for t in (args.tasks or "").split(",") if t],
        format=args.format,
        shots=args.shots,
        limit=args.limit,
        generate=args.generate,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        stop=args.stop.replace("\\n", "\n") or None,  # a typed \n is a newline
        lang=args.lang,
        text=args.text,
        stride=args.stride,
        batch_size=args.batch_size or 32,
        quiet=args.quiet,
    )


def _emit(row: dict[str, Any]) -> None:
    from llmtrain.eval.suite import public

    print(json.dumps(public(row), ensure_ascii=False), flush=True)


def run(args: argparse.Namespace) -> int:
    from llmtrain.checkpoint.inference import load_trained
    from llmtrain.eval.suite import run_suite, save_results

    spec = _spec(args)
    if args.all_checkpoints:
        return _all_checkpoints(args, spec)
    loaded = load_trained(args.checkpoint, verify=not args.no_verify)
    tokenizer = _tokenizer(loaded)
    results = run_suite(loaded.model, tokenizer, spec, _emit, _generator(loaded.model, tokenizer))
    out = Path(args.out) if args.out else loaded.checkpoint.parent.parent / "eval"
    written = save_results(results, out)
    print(
        f"step {loaded.step} of {loaded.checkpoint}: {len(written)} files in {out}",
        file=sys.stderr,
    )
    return 0


def _generator(model: Any, tokenizer: Any) -> Any:
    from llmtrain.generation.outputs import generate_outputs

    def generate(prompts: list[str], spec: Any) -> list[str]:
        return generate_outputs(
            model,
            tokenizer,
            prompts,
            max_new_tokens=spec.max_new_tokens,
            temperature=spec.temperature,
            top_k=spec.top_k,
            top_p=spec.top_p,
            stop=spec.stop,
            quiet=spec.quiet,
        )

    return generate


def _tokenizer(loaded: Any) -> Any:
    from llmtrain.errors import CheckpointError

    if loaded.tokenizer is None:
        raise CheckpointError(
            f"no tokenizer found for {loaded.checkpoint} (looked in the run and its data "
            "directory); benchmarks need text, so copy the data's tokenizer/ into the run"
        )
    return loaded.tokenizer


def _all_checkpoints(args: argparse.Namespace, spec: Any) -> int:
    from llmtrain.checkpoint.inference import load_trained
    from llmtrain.checkpoint.io import list_checkpoints
    from llmtrain.errors import CheckpointError, ConfigError
    from llmtrain.eval.suite import checkpoint_curve, plot_curve

    if not spec.tasks or spec.generate or spec.text:
        raise ConfigError(
            "--all-checkpoints scores --tasks only; name task files and run --generate / "
            "--text on one checkpoint"
        )
    run_dir = Path(args.checkpoint)
    ckpts = list_checkpoints(run_dir / "checkpoints")
    if not ckpts:
        raise CheckpointError(f"no checkpoints under {run_dir / 'checkpoints'}; pass a run dir")

    def load(path: Path) -> tuple[Any, Any, int]:
        loaded = load_trained(path, verify=not args.no_verify)
        return loaded.model, _tokenizer(loaded), loaded.step

    rows = checkpoint_curve(ckpts, spec, load, _emit)
    out = Path(args.out) if args.out else run_dir / "eval"
    out.mkdir(parents=True, exist_ok=True)
    (out / "checkpoints.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    try:
        plot = str(plot_curve(rows, out / "checkpoints_acc.png"))
    except ConfigError as e:  # the scores are written; only the picture is missing
        plot = f"no plot ({e})"
    print(f"{len(ckpts)} checkpoints scored: {out / 'checkpoints.jsonl'}, {plot}", file=sys.stderr)
    return 0
