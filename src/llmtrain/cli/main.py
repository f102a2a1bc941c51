"""`llmtrain` entry point: builds the sub-command parser and turns user errors into one clear
line on stderr and exit code 2 (no traceback). Each command module exposes
`register(subparsers)` which adds its parser and sets `func(args) -> int`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from llmtrain import __version__
from llmtrain.errors import LLMTrainError

COMMANDS = ("env", "prepare", "train", "eval", "generate", "demo", "monitor", "export", "config")


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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
