"""Launchers: the process group reads torchrun's and MPI's variables (accelerate's order);
`accelerate launch --multi_gpu --num_processes 2` trains our config in 2 processes on a CPU
exactly like one process, and `accelerate launch --cpu --num_processes 2` (which starts ONE
process) is warned about."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmtrain.distributed.process_group import (
    DistInfo,
    launch_env,
    single_process_launch_warning,
)

from .test_data_parallel import losses, overrides, train


def test_launch_env_reads_torchrun_then_mpi_variables():
    assert launch_env({}) == DistInfo(0, 1, 0)
    torchrun = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "PMI_RANK": "0"}
    assert launch_env(torchrun) == DistInfo(3, 4, 1)
    ompi = {"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2",
            "OMPI_COMM_WORLD_LOCAL_RANK": "1"}  # fmt: skip
    assert launch_env(ompi) == DistInfo(1, 2, 1)
    assert launch_env({"PMI_RANK": "2", "PMI_SIZE": "3", "MPI_LOCALRANKID": "0"}) == DistInfo(
        2, 3, 0
    )


def test_accelerate_cpu_single_process_is_detected():
    cpu_launch = {"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}
    assert "starts ONE process" in single_process_launch_warning(cpu_launch)
    assert single_process_launch_warning({**cpu_launch, "WORLD_SIZE": "2"}) is None
    assert single_process_launch_warning({"ACCELERATE_USE_CPU": "True"}) is None  # N = 1
    assert single_process_launch_warning({}) is None


def _accelerate(args: list[str], data: Path, run: Path, steps: int) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "accelerate.commands.launch", *args, "--main_process_port", "0",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "-m", "llmtrain.cli.main", "train", "--data", str(data), "--out", str(run)]  # fmt: skip
    for o in overrides(data, steps):
        argv += ["--set", o]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.slow
def test_accelerate_launch_trains_like_one_process(dist_data, tmp_path):
    pytest.importorskip("accelerate")
    train(dist_data, tmp_path / "single", 4)
    multi = _accelerate(["--multi_gpu", "--num_processes", "2"], dist_data, tmp_path / "acc", 4)
    assert multi.returncode == 0, multi.stderr[-3000:]
    assert "x 2 processes (ddp)" in multi.stdout + multi.stderr
    assert losses(tmp_path / "acc") == losses(tmp_path / "single")
    one = _accelerate(["--cpu", "--num_processes", "2"], dist_data, tmp_path / "cpu", 4)
    assert one.returncode == 0, one.stderr[-3000:]
    assert "warning: accelerate launch --cpu --num_processes N starts ONE process" in one.stderr
    assert json.loads((tmp_path / "cpu" / "checkpoints" / "step_000004" / "state.json")
                      .read_text())["world_size"] == 1  # fmt: skip
