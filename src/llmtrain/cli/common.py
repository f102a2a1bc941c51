"""Helpers shared by the CLI commands: config assembly from flags and output formatting."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Iterator, Sequence

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
    add_set_arg(p, "override one key, e.g. --set train.lr=3e-4 --set model.n_layer=6")


def add_set_arg(p: argparse.ArgumentParser, help_text: str) -> None:
    """`--set KEY=VALUE` (repeatable) into `args.overrides`."""
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help_text
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


class LazyChoices(Sequence[str]):
    """argparse `choices` read from a table on first use (parsing or help), so building
    the parser does not import what the table lives beside (torch). Give the argument a
    `metavar`: argparse then lists the choices only in help, through `%(choices)s`."""

    def __init__(self, load: Callable[[], Iterable[str]]) -> None:
        self._load = load
        self._items: list[str] | None = None

    def _all(self) -> list[str]:
        if self._items is None:
            self._items = list(self._load())
        return self._items

    def __contains__(self, item: object) -> bool:
        return item in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __getitem__(self, i):  # type: ignore[override]
        return self._all()[i]
