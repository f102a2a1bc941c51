"""`llmtrain monitor RUN_DIR... [--follow] [--report report.html] [--json]`: a live terminal
dashboard over runs' metrics.jsonl (`--follow`), or a one-off snapshot, a self-contained HTML
report with interactive plots and the diagnosis, or the diagnosis as JSON."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "monitor", help="dashboard, HTML report and diagnosis of training runs", description=__doc__
    )
    add_monitor_args(p)
    p.set_defaults(func=run)


def add_monitor_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "runs", nargs="+", metavar="RUN_DIR", help="run directories (or folders of runs)"
    )
    p.add_argument("--follow", "-f", action="store_true", help="keep redrawing as metrics arrive")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between polls (--follow)")
    p.add_argument(
        "--until-done", action="store_true", help="with --follow: stop when every run is finished"
    )
    p.add_argument("--report", metavar="FILE.html", help="write a self-contained HTML report")
    p.add_argument("--json", action="store_true", help="print each run's diagnosis as JSON")
    p.add_argument(
        "--checkpoint-dir", help="where the checkpoints are (default RUN_DIR/checkpoints)"
    )


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from llmtrain.monitor.dashboard import Dashboard
    from llmtrain.monitor.diagnosis import diagnose
    from llmtrain.monitor.report import write_report
    from llmtrain.monitor.runs import find_runs, load_run

    run_dirs = find_runs(args.runs)
    runs = [load_run(d, args.checkpoint_dir) for d in run_dirs]
    _unique_names(runs)
    if args.report:
        path = write_report(runs, args.report)
        print(f"report: {path} ({len(runs)} run(s)); open it in any browser", file=sys.stderr)
    if args.json:
        out = [
            {"run": str(r.run_dir), "step": r.step, "findings": [f.to_dict() for f in diagnose(r)]}
            for r in runs
        ]
        print(json.dumps(out, indent=2))
    if args.follow or not (args.report or args.json):
        console = Console()
        board = Dashboard(run_dirs, args.checkpoint_dir)
        if args.follow:
            with contextlib.suppress(KeyboardInterrupt):
                board.follow(console, args.interval, until_done=args.until_done)
        else:
            board.poll()
            console.print(board.renderable(console.width))
    has_error = any(f.severity == "error" for r in runs for f in diagnose(r))
    return 1 if (args.json and has_error) else 0


def _unique_names(runs: list) -> None:
    seen: dict[str, int] = {}
    for r in runs:
        seen[r.name] = seen.get(r.name, 0) + 1
    for r in runs:
        if seen[r.name] > 1:
            r.name = f"{r.run_dir.resolve().parent.name}/{r.run_dir.resolve().name}"
