"""`merge_parts(part_dirs, out)`: the DATA_DIRs of a `--num-shards` run → one DATA_DIR.

Every part must be complete (its manifest exists) and use the same tokenizer (sha256). The
shards are hard-linked (copied across file systems) into OUT/{train,val}/ renumbered in part
order, `report.json` sums the parts' reports (step counts, examples, splits; each part's own
report under "parts") and `report.html` shows it, `documents.jsonl` parts are concatenated
when present, and `manifest.json` is written last.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from llmtrain.data.prepare.documents import EXAMPLES_PER_REASON
from llmtrain.data.prepare.keep_text import KEPT_TEXT_FILE
from llmtrain.data.prepare.manifest import build_manifest, compression, split_figures
from llmtrain.data.prepare.report_html import REPORT_HTML, write_report_html
from llmtrain.data.shards import (
    MANIFEST_FILE,
    REPORT_FILE,
    SPLITS,
    TOKENIZER_DIR,
    read_manifest,
)
from llmtrain.errors import DataError
from llmtrain.utils.io import atomic_write_json


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links unsupported
        shutil.copy2(src, dst)


def _check_parts(parts: list[Path]) -> list[dict[str, Any]]:
    if not parts:
        raise DataError("--merge needs at least one part directory")
    manifests = []
    for part in parts:
        if not (part / MANIFEST_FILE).is_file():
            raise DataError(
                f"part {part} is not complete ({MANIFEST_FILE} is missing): rerun that part "
                "(with --resume, finished parts are skipped) before merging"
            )
        manifests.append(read_manifest(part))
    first = manifests[0]["tokenizer"]["sha256"]
    for part, m in zip(parts, manifests):
        if m["tokenizer"]["sha256"] != first:
            raise DataError(
                f"part {part} uses a different tokenizer than {parts[0]} (sha256 differs); "
                "prepare every part with the same --tokenizer PATH"
            )
    return manifests


def _sum_splits(reports: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    splits: dict[str, dict[str, Any]] = {}
    for name in reports[0]["splits"]:
        total = Counter()
        for r in reports:
            total.update({k: v for k, v in r["splits"][name].items() if isinstance(v, int)})
        splits[name] = split_figures(total)
    return splits


def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report for the parts: step counts summed by step, examples pooled (a few per
    reason), splits summed with compression recomputed; every part's report under "parts"."""
    steps: dict[str, Counter] = {}
    examples: dict[str, dict[str, list]] = {}
    bad: Counter[str] = Counter()
    for r in reports:
        for step in r["steps"]:
            steps.setdefault(step["name"], Counter()).update(
                {k: v for k, v in step.items() if k != "name"}
            )
        for name, reasons in r["examples"].items():
            for reason, items in reasons.items():
                kept = examples.setdefault(name, {}).setdefault(reason, [])
                kept += items[: EXAMPLES_PER_REASON - len(kept)]
        bad.update(r["bad_inputs"]["counts"])
    splits = _sum_splits(reports)
    timings: Counter[str] = Counter()
    for r in reports:
        timings.update(r["timings_s"])
    return {
        "inputs": [i for r in reports for i in r["inputs"]],
        "steps": [{"name": name, **dict(sorted(c.items()))} for name, c in steps.items()],
        "examples": examples,
        "bad_inputs": {
            "counts": dict(sorted(bad.items())),
            "items": [i for r in reports for i in r["bad_inputs"]["items"]],
        },  # fmt: skip
        "documents_kept": sum(r["documents_kept"] for r in reports),
        "tokenizer": reports[0]["tokenizer"],
        "splits": splits,
        "compression": compression(splits),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},  # summed over parts
        "parts": reports,
    }


def merge_parts(part_dirs: list[str | Path], out_dir: str | Path) -> dict[str, Any]:
    """Merge complete part DATA_DIRs into `out_dir`; returns the merged manifest."""
    parts = [Path(p) for p in part_dirs]
    manifests = _check_parts(parts)
    out = Path(out_dir)
    if (out / MANIFEST_FILE).exists():
        raise DataError(f"{out} already holds prepared data; choose a new --out for the merge")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(parts[0] / TOKENIZER_DIR, out / TOKENIZER_DIR, dirs_exist_ok=True)
    splits: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        (out / split).mkdir(exist_ok=True)
        shards, totals = [], Counter()
        for part, m in zip(parts, manifests):
            info = m["splits"][split]
            totals.update({k: info[k] for k in ("documents", "tokens", "bytes")})
            for shard in info["shards"]:
                name = f"{split}/shard_{len(shards):05d}"
                _link(part / shard["path"], out / f"{name}.bin")
                _link(part / shard["index"], out / f"{name}.idx.npy")
                shards.append({**shard, "path": f"{name}.bin", "index": f"{name}.idx.npy"})
        splits[split] = {**totals, "shards": shards}
    if all((p / KEPT_TEXT_FILE).is_file() for p in parts):
        with open(out / KEPT_TEXT_FILE, "wb") as dst:
            for part in parts:
                with open(part / KEPT_TEXT_FILE, "rb") as src:
                    shutil.copyfileobj(src, dst)
    stats: Counter[str] = Counter()
    for m in manifests:
        stats.update({k: v for k, v in m["stats"].items() if isinstance(v, int)})
    reports = [json.loads((p / REPORT_FILE).read_text(encoding="utf-8")) for p in parts]
    report = {**merge_reports(reports), "merged_from": [str(p) for p in parts],
              "stats": dict(stats)}  # fmt: skip
    atomic_write_json(out / REPORT_FILE, report)
    write_report_html(report, out / REPORT_HTML, f"{out} (merged from {len(parts)} parts)")
    first = manifests[0]
    manifest = build_manifest(
        dtype=first["dtype"], tokenizer=first["tokenizer"], split=first["split"],
        splits=splits, stats={**dict(stats), "parts": len(parts)},
    )  # fmt: skip
    atomic_write_json(out / MANIFEST_FILE, manifest)  # last: its presence means complete
    return manifest
