"""`dry_run(inputs, cfg, sample)`: run the cleaning steps on the first `sample` documents
and return (and print) what each step would remove, with examples. Nothing is written: the
near-duplicate index lives in a temporary directory that is removed."""

from __future__ import annotations

import tempfile
from itertools import islice
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from llmtrain.data.prepare.clean_pass import clean_steps
from llmtrain.data.prepare.config import PrepareConfig
from llmtrain.data.prepare.documents import Problems
from llmtrain.data.prepare.minhash import NearDedup
from llmtrain.data.prepare.readers import Reader, plan_inputs
from llmtrain.data.prepare.summary import print_bad_inputs

DEFAULT_SAMPLE = 1000


def dry_run(
    inputs: list[str | Path], cfg: PrepareConfig, sample: int = DEFAULT_SAMPLE, quiet: bool = False
) -> dict[str, Any]:
    """{"documents_sampled", "documents_kept", "steps": [...], "examples": {...}}."""
    cfg.validate()
    plan = plan_inputs(inputs, read_unknown=not cfg.ignore_unknown)
    problems = Problems(cfg.skip_bad_files)
    reader = Reader(plan, cfg.text_field, problems)
    with tempfile.TemporaryDirectory(prefix="llmtrain-dry-run-") as work:
        steps = clean_steps(cfg, Path(work))
        docs = islice(iter(reader), sample)
        for step in steps:
            docs = step(docs)
        kept = sum(1 for _ in docs)
        if steps and isinstance(steps[-1], NearDedup):
            kept -= int(steps[-1].finish().sum())
        for step in steps:
            step.close()
    result = {
        "documents_sampled": reader.stats["documents_read"],
        "documents_kept": kept,
        "steps": [{"name": s.name, **dict(sorted(s.stats.items()))} for s in steps],
        "examples": {s.name: s.examples for s in steps if s.examples},
        "bad_inputs": problems.report(),
    }
    if not quiet:
        _print(result)
    return result


def _print(result: dict[str, Any]) -> None:
    console = Console()
    table = Table(title=f"dry run on {result['documents_sampled']:,} documents (nothing written)",
                  title_justify="left")  # fmt: skip
    for col in ("step", "in", "out", "would remove"):
        table.add_column(col)
    for step in result["steps"]:
        removed = ", ".join(f"{k.removeprefix('removed_')} {v}" for k, v in step.items()
                            if k.startswith("removed_") and v)  # fmt: skip
        table.add_row(step["name"], str(step.get("documents_in", 0)),
                      str(step.get("documents_out", 0)), removed or "-")  # fmt: skip
    console.print(table)
    for name, reasons in result["examples"].items():
        for reason, items in reasons.items():
            console.print(f"[bold]{escape(name)}: {escape(reason)}[/bold]")
            for item in items:
                text = item["text"].replace("\n", " ")[:160]
                console.print(f"  [dim]{escape(item['id'])}[/dim] {escape(text)}", highlight=False)
    print_bad_inputs(console, result)
    console.print(f"would keep {result['documents_kept']:,} of {result['documents_sampled']:,}")
