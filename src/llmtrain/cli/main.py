"""`llmtrain` entry point: builds the sub-command parser and turns user errors into one clear
line on stderr and exit code 2 (no traceback). Each command module exposes
`register(subparsers)` which adds its parser and sets `func(args) -> int`."""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys

from llmtrain import __version__
from llmtrain.errors import LLMTrainError

COMMANDS = (
    "env",
    "prepare",
    "train",
    "eval",
    "generate",
    "demo",
    "monitor",
    "export",
    "plan",
    "config",
    "sweep",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmtrain",
        description="Train language models from raw text: prepare → train → eval → generate.",
    )
    parser.add_argument("--version", action="version", version=f"llmtrain {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"llmtrain.cli.{name}_cmd")
        module.register(sub)
    return parser


def _unknown(parser: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str]) -> None:
    """Exit 2 with the command's usage and "unrecognized arguments: --prest (did you mean
    --preset?)", the suggestion taken from that command's flags."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = sub.choices.get(getattr(args, "command", None) or "", parser)
    flags = [o for a in command._actions for o in a.option_strings if o.startswith("--")]
    words = []
    for arg in extra:
        close = difflib.get_close_matches(arg.split("=", 1)[0], flags, n=1, cutoff=0.6)
        words.append(f"{arg} (did you mean {close[0]}?)" if arg.startswith("-") and close else arg)
    command.error("unrecognized arguments: " + " ".join(words))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        _unknown(parser, args, extra)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except LLMTrainError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `llmtrain generate ... | head`: the reader went away; not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
