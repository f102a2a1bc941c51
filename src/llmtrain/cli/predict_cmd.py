"""`llmtrain predict RUN --input FILE --out FILE`: labels and class probabilities of a
fine-tuned classifier (its best checkpoint) for every row of a CSV/TSV/JSONL/Parquet file;
skipped rows are reported by line. A labelled input is also scored (printed as JSON)."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict", help="classify a file with a fine-tuned classifier", description=__doc__
    )
    p.add_argument(
        "run", metavar="RUN", help="a fine-tuned classifier's run (or checkpoint) directory"
    )
    p.add_argument("--input", required=True, metavar="FILE", help="rows to classify")
    p.add_argument("--out", required=True, metavar="FILE", help="predictions: .csv, .tsv or .jsonl")
    p.add_argument("--text-field", metavar="F", help="text column (default: the run's)")
    p.add_argument("--label-field", metavar="F", help="label column, if any (default: the run's)")
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llmtrain.finetune.predict import load_classifier, predict_file

    clf = load_classifier(args.run)
    say = lambda m: print(m, file=sys.stderr)  # noqa: E731
    res = predict_file(
        clf, args.input, args.out, args.text_field, args.label_field, args.batch_size, say
    )
    m = res.pop("metrics", None)
    if m is not None:
        res["metrics"] = {k: m[k] for k in ("accuracy", "macro_f1", "per_class", "confusion")}
    print(
        json.dumps({"out": args.out, "checkpoint": str(clf.checkpoint), **res}, ensure_ascii=False)
    )
    return 0
