"""The one builder of `manifest.json` and of the per-split token/compression figures, shared by
`prepare_corpus` (one run) and `merge_parts` (the parts of a `--num-shards` run)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from llmtrain import __version__
from llmtrain.data.shards import FORMAT, FORMAT_VERSION

SPLIT_FIELDS = ("documents", "tokens", "bytes", "shards")  # what the manifest keeps per split


def build_manifest(
    *, dtype: str, tokenizer: dict[str, Any], split: dict[str, Any],
    splits: Mapping[str, Mapping[str, Any]], stats: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """The manifest of a DATA_DIR: format stamp, tokenizer entry, split rule, per-split
    documents/tokens/bytes/shards (`SPLIT_FIELDS`) and the flat stats."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "llmtrain_version": __version__,
        "dtype": dtype,
        "tokenizer": tokenizer,
        "split": split,
        "splits": {name: {k: info[k] for k in SPLIT_FIELDS} for name, info in splits.items()},
        "stats": stats,
    }


def split_figures(counts: Mapping[str, Any]) -> dict[str, Any]:
    """A split's integer counts plus bytes and characters per token (EOS separators not
    counted as content)."""
    content = max(counts["tokens"] - counts["documents"], 1)
    return {
        **{k: v for k, v in counts.items() if k not in ("bytes_per_token", "chars_per_token")},
        "bytes_per_token": round(counts["bytes"] / content, 4),
        "chars_per_token": round(counts["chars"] / content, 4),
    }


def compression(splits: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """The report's "compression" entry: the val split's bytes and characters per token."""
    return {
        "val_bytes_per_token": splits["val"]["bytes_per_token"],
        "val_chars_per_token": splits["val"]["chars_per_token"],
    }
