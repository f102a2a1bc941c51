"""`merge_parts(part_dirs, out)`: the DATA_DIRs of a `--num-shards` run → one DATA_DIR.

Every part must be complete (its manifest exists) and use the same tokenizer (sha256). The
shards are hard-linked (copied across file systems) into OUT/{train,val}/ renumbered in part
order, `report.json` lists each part's report plus summed step counts, `documents.jsonl`
parts are concatenated when present, and `manifest.json` is written last.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llmtrain import __version__
from llmtrain.data.prepare.keep_text import KEPT_TEXT_FILE
from llmtrain.data.shards import (
    FORMAT,
    FORMAT_VERSION,
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
    report = {"merged_from": [str(p) for p in parts], "stats": dict(stats)}
    atomic_write_json(out / REPORT_FILE, report)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "llmtrain_version": __version__,
        "dtype": manifests[0]["dtype"],
        "tokenizer": manifests[0]["tokenizer"],
        "split": manifests[0]["split"],
        "splits": splits,
        "stats": {**dict(stats), "parts": len(parts)},
    }
    atomic_write_json(out / MANIFEST_FILE, manifest)  # last: its presence means complete
    return manifest
