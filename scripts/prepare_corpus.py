#!/usr/bin/env python
r"""Seed-compatible data preparation entry point (thin shell over `llmtrain prepare`).

    python scripts/prepare_corpus.py --input_dir data/raw/ --output_dir data/processed/ \
        --vocab_size 50000 --tokenizer_type sentencepiece

Reads the raw text under --input_dir, cleans and deduplicates it, splits train/val, trains
the tokenizer and writes token shards + manifest.json to --output_dir, which
`train_model.py --data_path` (or `llmtrain train --data`) then reads.
"""

from __future__ import annotations

import argparse
import sys

from llmtrain.config import config_from_dict
from llmtrain.data.prepare import PrepareConfig, prepare_corpus
from llmtrain.errors import LLMTrainError
from llmtrain.tokenizer import TOKENIZER_KINDS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--input_dir", required=True, nargs="+", help="folder(s) or files of raw text")
    p.add_argument("--output_dir", required=True, help="DATA_DIR to write")
    p.add_argument("--vocab_size", type=int, default=PrepareConfig.vocab_size)
    p.add_argument(
        "--tokenizer_type",
        default="bpe",
        help=f"{' | '.join(TOKENIZER_KINDS)} (sentencepiece = SentencePiece Unigram), "
        "or a saved tokenizer directory / tokenizer.json / .model",
    )
    p.add_argument("--val_fraction", type=float, default=PrepareConfig.val_fraction)
    p.add_argument("--text_field", default=PrepareConfig.text_field)
    p.add_argument("--skip_bad_files", action="store_true")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quality", choices=("off", "web"), default="off")
    p.add_argument("--pii", action="store_true")
    p.add_argument("--near_dedup", action="store_true")
    args = p.parse_args(argv)
    kind = args.tokenizer_type
    kind = kind.lower() if kind.lower() in TOKENIZER_KINDS else kind
    try:
        cfg = config_from_dict(
            PrepareConfig,
            {
                "tokenizer": kind,
                "vocab_size": args.vocab_size,
                "val_fraction": args.val_fraction,
                "text_field": args.text_field,
                "skip_bad_files": args.skip_bad_files,
                "overwrite": args.overwrite,
                "quality": args.quality,
                "pii": args.pii,
                "near_dedup": args.near_dedup,
            },
        )
        prepare_corpus(args.input_dir, args.output_dir, cfg)
    except LLMTrainError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
