"""Helpers shared by the CLI commands: config assembly from flags and output formatting."""

from __future__ import annotations

import argparse
import os

from llmtrain.errors import ConfigError


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="FILE.json",
        help="JSON config file(s), merged in order (later wins)",
    )
    p.add_argument(
        "--preset",
        metavar="NAME",
        help="start from a named preset, e.g. gpt2-tiny, gpt2-mini, llama-tiny",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one key, e.g. --set train.lr=3e-4 --set model.n_layer=6",
    )


def add_verify_arg(p: argparse.ArgumentParser) -> None:
    """`--no-verify`: load a checkpoint whose checksums do not match (every command that loads
    one verifies it first)."""
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="load the checkpoint even if its checksums do not match (damaged or hand-edited)",
    )


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def require(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)
