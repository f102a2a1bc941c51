"""Helpers for 2-process gloo tests on CPU: `run_distributed(fn, world_size, *args)` forks
`world_size` processes with the torchrun environment set (1 thread each, as measured: then
DDP/FSDP2 train bitwise equal to one process), and a tiny prepared corpus."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp

from tests.integration.conftest import synthetic_corpus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, fn: Callable, world_size: int, port: int, args: tuple) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    try:
        fn(*args)
    finally:
        from llmtrain.distributed import destroy_distributed

        destroy_distributed()


def run_distributed(fn: Callable, world_size: int, *args: Any) -> None:
    """Run `fn(*args)` in `world_size` forked processes; a failure in any re-raises here."""
    mp.start_processes(
        _worker, args=(fn, world_size, free_port(), args), nprocs=world_size, start_method="fork"
    )


@pytest.fixture(scope="session")
def dist_data(tmp_path_factory) -> Path:
    from llmtrain.data.prepare import PrepareConfig, prepare_corpus

    root = tmp_path_factory.mktemp("dist_corpus")
    corpus = synthetic_corpus(root / "raw", n_docs=20)
    out = root / "data"
    prepare_corpus([corpus], out, PrepareConfig(tokenizer="char", val_fraction=0.2, workers=1))
    return out
