"""The end-of-run summary of `prepare`: documents kept and removed by reason, tokens per
split, vocabulary, compression and where the outputs are (a rich table on stdout)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def _removed_rows(report: dict[str, Any]) -> list[tuple[str, int]]:
    rows = []
    for step in report["steps"]:
        for key, n in step.items():
            if key.startswith("removed_") and n:
                rows.append((key.removeprefix("removed_").replace("_", " "), n))
    for kind, n in report["bad_inputs"]["counts"].items():
        rows.append((f"bad input skipped ({kind.replace('_', ' ')})", n))
    return rows


def _annotation_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """PII replacements per type and the language mix, when those steps ran."""
    steps = {step["name"]: step for step in report["steps"]}
    rows = []
    pii = {k.removeprefix("replaced_"): n for k, n in steps.get("pii", {}).items() if k.startswith("replaced_")}  # fmt: skip
    if pii:
        rows.append(("  PII replaced", ", ".join(f"{k} {n:,}" for k, n in sorted(pii.items()))))
    langs = {k.removeprefix("language_"): n for k, n in steps.get("language", {}).items() if k.startswith("language_")}  # fmt: skip
    if langs:
        top = sorted(langs.items(), key=lambda kv: -kv[1])[:6]
        rows.append(("  languages", ", ".join(f"{k} {n:,}" for k, n in top)))
    moved = {k.removeprefix("relabelled_"): n for k, n in steps.get("language", {}).items() if k.startswith("relabelled_")}  # fmt: skip
    if moved:
        labels = ", ".join(f"{k.replace('_as_', ' as ')} {n:,}" for k, n in sorted(moved.items()))
        rows.append(("  languages relabelled", labels))
    return rows


SHOWN_PROBLEMS = 10  # bad inputs listed on the console (all, up to 200, in report.json)


def _not_read(report: dict[str, Any]) -> str:
    """Files (and zip members) that were not read, by why; "" when none."""
    read = next(step for step in report["steps"] if step["name"] == "read")
    parts = [f"{n:,} {k}" for k, n in report.get("unsupported_files_ignored", {}).items()]
    if read.get("unknown_files_not_text"):
        parts.append(f"{read['unknown_files_not_text']:,} of unknown type, not UTF-8 text")
    if read.get("files_without_text"):
        parts.append(f"{read['files_without_text']:,} with no records (e.g. a header alone)")
    if read.get("zip_members_ignored"):
        parts.append(f"{read['zip_members_ignored']:,} zip members (hidden or binary)")
    return ", ".join(parts)


def print_bad_inputs(console: Console, report: dict[str, Any]) -> None:
    """The first bad inputs (where: what), the bytes they cost and where the rest are."""
    bad = report["bad_inputs"]
    total = sum(bad["counts"].values())
    if not total:
        return
    console.print(f"[bold]{total:,} bad inputs skipped[/bold] ({bad.get('lost_bytes', 0):,} input "
                  "bytes reached no document):", highlight=False)  # fmt: skip
    for item in bad["items"][:SHOWN_PROBLEMS]:
        console.print(f"  {escape(item['where'])}: {escape(item['detail'])}", highlight=False)
    if total > SHOWN_PROBLEMS:
        console.print(f"  ... {total - SHOWN_PROBLEMS:,} more in report.json (bad_inputs)")


def print_summary(manifest: dict[str, Any], report: dict[str, Any], out: Path) -> None:
    """Print what `prepare` did, for a person reading the terminal."""
    console = Console()
    stats = manifest["stats"]
    table = Table(title=f"prepared {out}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    read = next(step for step in report["steps"] if step["name"] == "read")
    sources = [f"{stats['files']:,} files"] if stats["files"] else []
    if read.get("builtin_corpora_read"):
        sources.append("built-in corpus")
    table.add_row("read", f"{' + '.join(sources)}, {stats['bytes_read'] / 2**20:.1f} MiB")
    if read.get("unknown_files_read_as_text"):
        table.add_row(
            "  of unknown type, read as text", f"{read['unknown_files_read_as_text']:,} files"
        )
    not_read = _not_read(report)
    if not_read:
        table.add_row("files not read", not_read)
    table.add_row("documents read", f"{stats['documents_read']:,}")
    for label, n in _removed_rows(report):
        table.add_row(f"  removed: {label}", f"{n:,}")
    for label, value in _annotation_rows(report):
        table.add_row(label, value)
    table.add_row("documents kept", f"{stats['documents_kept']:,}")
    split = manifest["split"]
    table.add_row("split", f"{split['method']}, val_fraction {split['val_fraction']}")
    tok = manifest["tokenizer"]
    vocab = f"{tok['type']}, vocab {tok['vocab_size']:,}, {manifest['dtype']}"
    note = report["tokenizer"].get("vocab_size_note")
    if note and report["tokenizer"].get("vocab_size_requested"):
        vocab += f" ({note})"
    table.add_row("tokenizer", vocab)
    for name, info in report["splits"].items():
        table.add_row(
            f"{name}",
            f"{info['documents']:,} docs, {info['tokens']:,} tokens, {info['shards']} shard(s)",
        )
    comp = report["compression"]
    table.add_row(
        "val compression",
        f"{comp['val_bytes_per_token']:.2f} bytes/token, {comp['val_chars_per_token']:.2f} chars/token",
    )
    unk = sum(info["unk_tokens"] for info in report["splits"].values())
    if unk:
        table.add_row("unknown tokens", f"{unk:,} (characters unseen in train)")
    table.add_row("time", f"{sum(report['timings_s'].values()):.1f} s")
    console.print(table)
    print_bad_inputs(console, report)
    console.print(f"manifest  {out / 'manifest.json'}\nreport    {out / 'report.json'}")
    console.print(f"tokenizer {out / tok['path']}")
