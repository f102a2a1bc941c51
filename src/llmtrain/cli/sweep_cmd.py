"""`llmtrain sweep SPEC --out DIR [--parallel N]`: hyperparameter search with Optuna (TPE,
grid or random) over any config keys, with pruning on the val metric; rerun the same command
to resume. `llmtrain sweep --best DIR` prints the best trial's config (JSON for
`llmtrain train --config`); `llmtrain sweep --report DIR` rebuilds the table and HTML page."""

from __future__ import annotations

import argparse

from llmtrain.cli.common import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="hyperparameter search (Optuna) over config keys", description=__doc__
    )
    p.add_argument("spec", nargs="?", help="sweep spec (JSON or YAML): data, base, params, ...")
    p.add_argument("--out", help="sweep directory: study.db, trials/, report.html")
    p.add_argument("--data", help="DATA_DIR (overrides the spec's 'data')")
    p.add_argument(
        "--parallel",
        "--workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="worker processes sharing the study: one per GPU, or the CPU cores split among "
        "them (torch threads = cores // N); never more than the devices or cores",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where --parallel places workers (default: GPUs when present)")  # fmt: skip
    p.add_argument("--best", metavar="DIR", help="print the best trial's config as JSON")
    p.add_argument("--report", metavar="DIR", help="print the table and rewrite report.html")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llmtrain.cli.common import require

    if args.best:
        import json
        from pathlib import Path

        from llmtrain.sweep.report import best_config
        from llmtrain.sweep.study import open_study, read_spec

        spec = read_spec(args.best)
        study = open_study(spec, Path(args.best), load_only=True)
        print(json.dumps(best_config(study, Path(args.best)), indent=2))
        return 0
    if args.report:
        from llmtrain.sweep.runner import summarize

        summarize(args.report)
        return 0
    require(bool(args.spec), "llmtrain sweep needs a SPEC file (or --best DIR / --report DIR)")
    require(bool(args.out), "llmtrain sweep needs --out DIR (where the study and trials go)")
    from llmtrain.sweep.runner import run_sweep

    run_sweep(args.spec, args.out, args.parallel, args.data, args.device)
    return 0
