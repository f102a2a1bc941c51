"""`llmtrain prepare INPUT... --out DATA_DIR`: raw text → tokenizer + token shards.

Thin shell: parse flags → `llmtrain.api.prepare` (`PrepareConfig` → `prepare_corpus`)
(`--dry-run`: `dry_run`; `--merge PART...`: `merge_parts`).
"""

from __future__ import annotations

import argparse
import sys

from llmtrain.config import config_from_dict
from llmtrain.data.prepare import PrepareConfig
from llmtrain.data.prepare.dry_run import dry_run
from llmtrain.data.prepare.merge import merge_parts
from llmtrain.data.prepare.signals import Stopped, stop_on_signals
from llmtrain.errors import ConfigError

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
    "fix_encoding",
    "skip_bad_files",
    "ignore_unknown",
    "overwrite",
    "quality",
    "quality_set",
    "zh_words",
    "languages",
    "detect_language",
    "language_aliases",
    "pii",
    "near_dedup",
    "near_dedup_preset",
    "near_dedup_threshold",
    "decontaminate",
    "decontaminate_ngram",
    "decontaminate_mode",
    "keep_text",
    "shard_index",
    "num_shards",
    "resume",
    "tokenizer_train_bytes",
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
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="file, folder or builtin:python")
    p.add_argument("--out", metavar="DATA_DIR", help="output directory (not for --dry-run)")
    p.add_argument(
        "--tokenizer",
        metavar="KIND|PATH",
        help="tokenizer to train: bpe, unigram, wordpiece (HF tokenizers), sentencepiece "
        "(= sentencepiece-unigram), sentencepiece-bpe, char, byte; or a saved tokenizer "
        f"directory / tokenizer.json / .model to use as is (default {_DEFAULTS.tokenizer})",
    )
    p.add_argument(
        "--tokenizer-train-bytes",
        type=int,
        help="at most this much text trains the tokenizer (default 256 MiB, sentencepiece 64 "
        "MiB): bounds its memory on any corpus size",
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
        "--workers",
        type=int,
        help="processes for the cleaning steps and threads for tokenizer training/encoding "
        "(default: all cores); the output is the same for any value",
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
        "--no-fix-encoding",
        dest="fix_encoding",
        action="store_false",
        default=None,
        help="keep mojibake as it is (default: repair text that was UTF-8 decoded as "
        "Latin-1/cp1252/MacRoman, with ftfy)",
    )
    p.add_argument(
        "--skip-bad-files",
        action="store_true",
        default=None,
        help="skip files, lines, rows and records that cannot be used (undecodable, binary, "
        "malformed, truncated), listing each with its place and lost bytes in the summary and "
        "report.json",
    )
    p.add_argument(
        "--ignore-unknown",
        action="store_true",
        default=None,
        help="skip files of unknown type in input folders (default: read them as text when "
        "they are UTF-8, e.g. WikiText's .raw); skipped files are counted in the summary",
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
        "--zh-words",
        choices=("chars", "jieba"),
        help="how the quality filters count Chinese words: chars (default: one per character) "
        "or jieba (word segmentation with FineWeb-2's Chinese thresholds, except that the "
        "share of words with a letter is counted over characters; pip install 'llmtrain[zh]')",
    )
    p.add_argument(
        "--languages",
        type=lambda s: [c.strip() for c in s.split(",") if c.strip()],
        metavar="CODES",
        help="keep only these languages, ISO 639-1 comma-separated (e.g. en,zh)",
    )
    p.add_argument(
        "--language-aliases",
        type=_aliases,
        metavar="LABEL=CODE,...",
        help="count detected label LABEL as language CODE (default wuu=zh,yue=zh: Wu and "
        "Cantonese, which the detector gives some Mandarin text, count as zh); none: raw labels",
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
        help="drop near-duplicate documents (MinHash LSH on word/character 5-grams)",
    )
    p.add_argument(
        "--near-dedup-preset",
        choices=("recall", "fineweb"),
        help="recall (default): 28 bands x 4 rows, pairs confirmed when their signatures "
        "agree on >= 50%% (finds copies with ~5%% of words changed); fineweb: FineWeb's "
        "14 bands x 8 rows, no check",
    )
    p.add_argument(
        "--near-dedup-threshold",
        type=float,
        help="estimated Jaccard similarity a candidate pair needs (0 = no check; preset's)",
    )
    p.add_argument(
        "--decontaminate",
        nargs="+",
        metavar="EVAL_FILE",
        help="drop documents sharing a long word n-gram with these evaluation files (JSONL: "
        "every string field; text: every line)",
    )
    p.add_argument("--decontaminate-ngram", type=int, help="n-gram length (default 13)")
    p.add_argument(
        "--decontaminate-mode",
        choices=("drop", "flag"),
        help="drop (default) or flag: keep and annotate contaminated documents",
    )
    p.add_argument(
        "--keep-text",
        action="store_true",
        default=None,
        help="also write DATA_DIR/documents.jsonl: the cleaned text with ids and annotations",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="run the cleaning steps on a sample, print what would be removed, write nothing",
    )
    p.add_argument(
        "--dry-run-docs", type=int, default=1000, help="documents a --dry-run reads (1000)"
    )
    p.add_argument(
        "--shard-index", type=int, help="run part I of --num-shards N (0-based; e.g. a Slurm array)"
    )
    p.add_argument("--num-shards", type=int, help="split the input files into N parts")
    p.add_argument(
        "--resume",
        action="store_true",
        default=None,
        help="skip DATA_DIR when it is already complete; after a crash, go on from its last "
        "checkpoint (every 64 MiB of input while cleaning, after near-dedup and the "
        "tokenizer, every 64 MiB of text packed) with output identical to an uninterrupted run",
    )
    p.add_argument(
        "--merge",
        nargs="+",
        metavar="PART_DIR",
        help="merge the DATA_DIRs of a --num-shards run into --out (one manifest)",
    )
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars or summary (bars are also off when stderr is not a terminal)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        default=None,
        help="replace DATA_DIR if it already holds prepared data",
    )
    p.set_defaults(func=run)


def _aliases(text: str) -> dict[str, str]:
    if text.strip().lower() == "none":
        return {}
    pairs = [item.partition("=") for item in text.split(",") if item.strip()]
    if any(not sep for _, sep, _ in pairs):
        raise argparse.ArgumentTypeError(f"{text!r}: give LABEL=CODE pairs, e.g. wuu=zh,yue=zh")
    return {label.strip(): code.strip() for label, _, code in pairs}


def run(args: argparse.Namespace) -> int:
    if not args.out and not args.dry_run:
        raise ConfigError("--out DATA_DIR is required (where the prepared data goes)")
    if args.merge:
        if args.inputs:
            raise ConfigError("--merge takes part directories only; drop the INPUT arguments")
        manifest = merge_parts(args.merge, args.out)
        tokens = sum(s["tokens"] for s in manifest["splits"].values())
        print(f"merged {len(args.merge)} parts into {args.out}: {tokens:,} tokens")
        return 0
    if not args.inputs:
        raise ConfigError("no INPUT given: pass files, folders or builtin:python (or --merge)")
    given = {k: getattr(args, k) for k in _FIELDS if getattr(args, k) is not None}
    if args.dry_run:
        dry_run(args.inputs, config_from_dict(PrepareConfig, given), args.dry_run_docs)
        return 0
    from llmtrain.api import prepare

    try:
        with stop_on_signals():
            prepare(args.inputs, args.out, quiet=args.quiet, **given)
    except Stopped as e:
        print(f"\nstopped by {e}: {args.out} keeps its last checkpoint; rerun the same command "
              "with --resume to go on from there", file=sys.stderr)  # fmt: skip
        return 128 + e.signum
    return 0
