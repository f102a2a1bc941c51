"""`llmtrain prepare INPUT... --out DATA_DIR`: raw text → tokenizer + token shards.

Thin shell: parse flags → `PrepareConfig` → `llmtrain.data.prepare.prepare_corpus`.
"""

from __future__ import annotations

import argparse

from llmtrain.config import config_from_dict
from llmtrain.data.prepare import PrepareConfig, prepare_corpus

_DEFAULTS = PrepareConfig()
# flag dest -> PrepareConfig field, for the flags the user actually gave
_FIELDS = (
    "tokenizer",
    "vocab_size",
    "val_fraction",
    "workers",
    "text_field",
    "seed",
    "shard_tokens",
    "min_chars",
    "skip_bad_files",
    "overwrite",
    "quality",
    "quality_set",
    "languages",
    "detect_language",
    "pii",
    "near_dedup",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "prepare",
        help="clean, deduplicate, split and tokenize a corpus into DATA_DIR",
        description=(
            "Read text, JSONL (.gz/.bz2/.zst), CSV, Parquet, HTML and WARC files or folders "
            "(recursively), clean and deduplicate them, split "
            "train/val, train a tokenizer on train and write token shards + manifest.json to "
            "DATA_DIR. Use builtin:python for a demo corpus (the Python standard library's "
            "sources and help topics) that needs no download."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="file, folder or builtin:python")
    p.add_argument("--out", required=True, metavar="DATA_DIR", help="output directory")
    p.add_argument(
        "--tokenizer",
        metavar="bpe|char|byte|PATH",
        help=f"tokenizer kind to train, or a saved tokenizer to use (default {_DEFAULTS.tokenizer})",
    )
    p.add_argument(
        "--vocab-size", type=int, help=f"BPE vocabulary size (default {_DEFAULTS.vocab_size})"
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        help=f"share of text held out for validation (default {_DEFAULTS.val_fraction})",
    )
    p.add_argument(
        "--workers", type=int, help="threads for BPE training/encoding (default: all cores)"
    )
    p.add_argument(
        "--text-field",
        help="JSONL field (dotted when nested) or CSV/Parquet column with the text (default text)",
    )
    p.add_argument(
        "--seed", type=int, help=f"seed of the document split (default {_DEFAULTS.seed})"
    )
    p.add_argument("--shard-tokens", type=int, help="tokens per shard (default 100M)")
    p.add_argument("--min-chars", type=int, help="drop documents shorter than this (default 1)")
    p.add_argument(
        "--skip-bad-files",
        action="store_true",
        default=None,
        help="skip undecodable/binary files and malformed JSONL lines, listing them in report.json",
    )
    p.add_argument(
        "--quality",
        choices=("off", "web"),
        help="web: Gopher quality + repetition, C4 and FineWeb line rules for crawled text; "
        "off (default) leaves curated text (books, code) untouched",
    )
    p.add_argument(
        "--quality-set",
        action="append",
        metavar="FILTER[.SCRIPT].FIELD=VALUE",
        help="change one quality threshold, e.g. gopher_quality.min_words=30 or "
        "c4.cjk.min_sentences=2 (repeatable; SCRIPT is latin (default) or cjk)",
    )
    p.add_argument(
        "--languages",
        type=lambda s: [c.strip() for c in s.split(",") if c.strip()],
        metavar="CODES",
        help="keep only these languages, ISO 639-1 comma-separated (e.g. en,zh)",
    )
    p.add_argument(
        "--detect-language",
        action="store_true",
        default=None,
        help="tag every document's language (the report's language mix) without filtering",
    )
    p.add_argument(
        "--pii",
        action="store_true",
        default=None,
        help="replace e-mails, phone numbers, IP addresses, card and Chinese ID numbers "
        "with <EMAIL>, <PHONE>, ... (counts per type in report.json)",
    )
    p.add_argument(
        "--near-dedup",
        action="store_true",
        default=None,
        help="drop near-duplicate documents (MinHash LSH, 14 bands x 8 rows)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        default=None,
        help="replace DATA_DIR if it already holds prepared data",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    given = {k: getattr(args, k) for k in _FIELDS if getattr(args, k) is not None}
    cfg = config_from_dict(PrepareConfig, given)  # validates, naming the bad value
    prepare_corpus(args.inputs, args.out, cfg)
    return 0
