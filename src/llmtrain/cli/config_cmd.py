"""`llmtrain config --explain [KEY]`: every config key with its type, default and comment —
the run keys that `train --set KEY=VALUE` and `--config FILE.json` take (model, train, optim,
data, distributed, monitor, objective, stability) and the `prepare` options; `--explain
train.lr` for one key, `--explain train` for a section. `--json` prints them as data."""

from __future__ import annotations

import argparse
import difflib
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "config",
        help="list every config key with its type, default and meaning",
        description=__doc__,
    )
    p.add_argument(
        "--explain",
        nargs="?",
        const="",
        default="",
        metavar="KEY",
        help="a key (train.lr) or section (train) to explain; all keys when omitted",
    )
    p.add_argument("--json", action="store_true", help="print the keys as a JSON list")
    p.set_defaults(func=run)


def all_keys() -> list:
    from llmtrain.config.explain import explain
    from llmtrain.data.prepare.config import PrepareConfig
    from llmtrain.train.config import RunConfig

    return explain(RunConfig) + explain(PrepareConfig, "prepare")


def run(args: argparse.Namespace) -> int:
    from llmtrain.errors import ConfigError

    keys, want = all_keys(), args.explain.strip()
    if want:
        chosen = [k for k in keys if k.key == want or k.key.startswith(want + ".")]
        if not chosen:
            close = difflib.get_close_matches(want, [k.key for k in keys], n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"no config key '{want}'{hint} (`llmtrain config --explain` lists them all)"
            )
        keys = chosen
    if args.json:
        print(json.dumps([k.__dict__ for k in keys], indent=1, ensure_ascii=False))
        return 0
    for k in keys:
        print(k.line())
    if not want:
        print(
            "\nset run keys with `llmtrain train --set KEY=VALUE` or a --config JSON file; "
            "prepare.* keys are `llmtrain prepare` options (--vocab-size for vocab_size)"
        )
    return 0
