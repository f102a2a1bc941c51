"""Helpers shared by the eval benchmarks (eval_*.py; not a benchmark itself): their common
command line (RUN, --tasks, --limit, --threads), loading the run, and the printed table."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "eval"
DEFAULT_TASKS = [SHARED / "arc" / "ARC-Easy-Dev.jsonl", SHARED / "piqa"]


def eval_parser(doc: str, limit: int | None = None) -> argparse.ArgumentParser:
    """RUN, --tasks (default: ARC-Easy dev and PIQA), --limit, --threads."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--tasks", default=",".join(str(t) for t in DEFAULT_TASKS))
    ap.add_argument("--limit", type=int, default=limit)
    ap.add_argument("--threads", type=int, default=1)
    return ap


def load_run(args: argparse.Namespace) -> Any:
    """Set the thread count, then the run's latest checkpoint (`load_trained`)."""
    from llmtrain.checkpoint.inference import load_trained

    torch.set_num_threads(args.threads)
    return load_trained(args.run)


def print_table(rows: list[dict[str, Any]], columns: Sequence[tuple[str, str, str, str]]) -> None:
    """A header, then one line per row; a column is (key, title, title spec, cell format),
    e.g. ("acc", "acc", ">8", "{:>8.4f}")."""
    print("".join(format(title, spec) for _, title, spec, _ in columns))
    for r in rows:
        print("".join(cell.format(r[key]) for key, _, _, cell in columns))
