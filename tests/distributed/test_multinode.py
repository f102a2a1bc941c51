"""Beyond one machine, on this one: two `torchrun --nnodes 2` agents (one rank each, c10d
rendezvous, gloo) train exactly like one process and resume across a restart of both; the
run then continues on 1 node x 2 ranks and on 1 process, still exactly. The SLURM batch
script runs under a faked SLURM (fake `srun`/`scontrol` on PATH, SLURM_* variables): its
torchrun line starts the two agents, SIGUSR1 before the time limit stops the ranks at a step
boundary with a checkpoint and requeues the job, and the requeued job resumes to the end.
The fake runs the script itself, unchanged; test_slurm_local.py runs it under a real local
SLURM when slurm-wlm is installed (there a requeued job waits out SLURM's ~150 s requeue
delay, too slow for the suite, hence the fake for the requeue path)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import free_port, run_distributed
from .test_data_parallel import assert_same_weights, losses, overrides, train, weights

ROOT = Path(__file__).resolve().parents[2]
SBATCH = ROOT / "launch" / "slurm" / "train.sbatch"
BIN = Path(sys.executable).parent


def _env(**extra: str) -> dict[str, str]:
    src = str(ROOT / "src")
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{src}:{path}", **extra}


def _train_args(data: Path, run: Path, steps: int, **extra: object) -> list[str]:
    argv = ["-m", "llmtrain.cli.main", "train", "--data", str(data), "--out", str(run),
            "--resume", "--quiet"]  # fmt: skip
    for o in overrides(data, steps, **extra):
        argv += ["--set", o]
    return argv


def _state(run: Path, step: int) -> dict:
    return json.loads((run / "checkpoints" / f"step_{step:06d}" / "state.json").read_text())


FAKE_SRUN = """#!/bin/bash
# srun --ntasks-per-node=1 on SLURM_NNODES nodes, here: one background task per "node"
while [[ $1 == --* ]]; do shift; done
pids=()
for ((n = 0; n < SLURM_NNODES; n++)); do SLURM_NODEID=$n SLURM_PROCID=$n "$@" & pids+=($!); done
trap 'kill -TERM "${pids[@]}" 2>/dev/null' TERM   # srun passes signals to its tasks
rc=0
for p in "${pids[@]}"; do
  while :; do wait "$p"; s=$?; kill -0 "$p" 2>/dev/null || break; done
  [ "$s" -ne 0 ] && rc=$s
done
exit $rc
"""
FAKE_SCONTROL = """#!/bin/bash
case "$1" in
  show) echo 127.0.0.1 ;;  # show hostnames $SLURM_JOB_NODELIST: the first is the head
  requeue) echo "requeue $2" >> "$FAKE_SLURM_LOG" ;;
esac
"""


def _fake_slurm(tmp_path: Path) -> dict[str, str]:
    fake = tmp_path / "fakebin"
    fake.mkdir()
    for name, text in (("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL)):
        (fake / name).write_text(text)
        (fake / name).chmod(0o755)
    return _env(
        PATH=f"{fake}:{BIN}:{os.environ['PATH']}",
        SLURM_JOB_ID="4242", SLURM_NNODES="2", SLURM_JOB_NODELIST="node[1-2]",
        SLURM_CPUS_PER_TASK="1", GPUS_PER_NODE="1", MASTER_PORT=str(free_port()),
        FAKE_SLURM_LOG=str(tmp_path / "slurm.log"),
    )  # fmt: skip


def _sbatch(data: Path, run: Path, env: dict[str, str], steps: int) -> subprocess.Popen:
    sets = _train_args(data, run, steps)[9:]  # the --set options
    return subprocess.Popen(
        ["bash", str(SBATCH), str(data), str(run), "--quiet", *sets],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_two_nodes_requeue_and_resume_on_one_node_and_one_process_exactly(dist_data, tmp_path):
    """sbatch on 2 "nodes" (two torchrun agents) until SIGUSR1 → checkpoint at step k and a
    requeue; the requeued job (both agents restarted) resumes to 24; then 1 node x 2 ranks
    to 32 and 1 process to 40: the curve equals one uninterrupted process, bitwise."""
    env, run = _fake_slurm(tmp_path), tmp_path / "run"
    job = _sbatch(dist_data, run, env, 48)
    first = run / "checkpoints" / "step_000004"
    deadline = time.monotonic() + 180
    while not first.is_dir() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    job.send_signal(signal.SIGUSR1)  # what --signal=B:USR1@300 sends to the batch shell
    out, _ = job.communicate(timeout=240)
    assert job.returncode == 0, out[-3000:]
    assert (tmp_path / "slurm.log").read_text() == "requeue 4242\n", out[-3000:]
    stopped = max(int(p.name[5:]) for p in (run / "checkpoints").glob("step_*"))
    assert 4 <= stopped < 24, f"stopped at {stopped}: SIGUSR1 came too late"
    said = "\n".join(x for x in out.splitlines() if "step" in x or "SIG" in x or "rror" in x)
    # rank 0 prints the stop; when the other agent's SIGTERM reached its worker first, rank 0
    # learns it from the per-step all-reduce and says so (train/signals.py)
    assert re.search(r"stopped \((SIGTERM|signal on another rank)\)", out), said
    assert _state(run, stopped)["world_size"] == 2
    requeued = _sbatch(dist_data, run, env, 24)  # the requeued job: same script, --resume
    out, _ = requeued.communicate(timeout=240)
    assert requeued.returncode == 0, out[-3000:]
    run_distributed(train, 2, dist_data, run, 32, True)  # 1 node x 2 ranks
    train(dist_data, run, 40, resume=True)  # 1 process
    train(dist_data, tmp_path / "single", 40)
    assert len(losses(run)) == 40
    assert losses(run) == losses(tmp_path / "single")
    assert_same_weights(weights(run, 40), weights(tmp_path / "single", 40))


def test_skypilot_task_is_valid_yaml_with_torchrun_fed_from_node_variables():
    yaml = pytest.importorskip("yaml")
    task = yaml.safe_load((ROOT / "launch" / "skypilot" / "train.yaml").read_text())
    for key in ("name", "num_nodes", "resources", "setup", "run"):
        assert key in task, key
    assert task["num_nodes"] >= 2 and "accelerators" in task["resources"]
    run = task["run"]
    for var in ("SKYPILOT_NUM_NODES", "SKYPILOT_NODE_RANK", "SKYPILOT_NODE_IPS",
                "SKYPILOT_NUM_GPUS_PER_NODE"):  # fmt: skip
        assert f"${var}" in run or f'"${var}"' in run, var
    assert "--rdzv_backend c10d" in run and "--resume" in run


def test_sbatch_script_is_valid_bash_in_the_field_style():
    text = SBATCH.read_text()
    assert subprocess.run(["bash", "-n", str(SBATCH)]).returncode == 0
    for directive in ("--requeue", "--cpus-per-task", "--ntasks-per-node=1", "--signal="):
        assert f"#SBATCH {directive}" in text, directive
    assert "srun" in text and '--nnodes "$SLURM_NNODES"' in text
    assert "NCCL_SOCKET_IFNAME" in text and "TORCH_NCCL_ASYNC_ERROR_HANDLING" in text
