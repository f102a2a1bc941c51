"""The SLURM batch script under a real SLURM: the fixture starts slurmctld and two slurmd (one
per "node", `slurmd -N`) on this machine from Debian's slurm-wlm, and `sbatch --wait` runs
launch/slurm/train.sbatch on 2 nodes x 1 rank; the losses equal one process bitwise.
Skipped unless slurm-wlm is installed, we are root, and /etc/hosts names two loopback hosts
(node names must resolve: the script's rendezvous host is the first node's name). The
requeue/preemption path is tested under a faked SLURM (test_multinode.py): a real requeue
waits out SLURM's requeue delay (~150 s measured here)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import free_port
from .test_data_parallel import losses, overrides, train
from .test_multinode import BIN, ROOT, SBATCH, _env

CONF = """ClusterName=llmtrain-test
SlurmctldHost={host}
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/none
CredType=cred/none
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd-%n.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd-%n.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName={n1} NodeAddr=127.0.0.1 Port={p1} CPUs=2 State=UNKNOWN
NodeName={n2} NodeAddr=127.0.0.1 Port={p2} CPUs=2 State=UNKNOWN
PartitionName=test Nodes={n1},{n2} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
"""


def _loopback_names() -> list[str]:
    names = []
    for line in Path("/etc/hosts").read_text().splitlines():
        parts = line.split("#")[0].split()
        if parts and parts[0].startswith("127."):
            names += [n for n in parts[1:] if n != "localhost" and n not in names]
    return names


@pytest.fixture
def local_slurm(tmp_path):
    if not (shutil.which("slurmctld") and shutil.which("slurmd") and shutil.which("sbatch")):
        pytest.skip("slurm-wlm is not installed (apt-get install slurm-wlm)")
    if os.geteuid() != 0:
        pytest.skip("slurmd needs root")
    names = _loopback_names()
    if len(names) < 2:
        pytest.skip("/etc/hosts names fewer than two loopback hosts for the two nodes")
    root = tmp_path / "slurm"
    for d in ("state", f"spool/{names[0]}", f"spool/{names[1]}"):
        (root / d).mkdir(parents=True)
    conf = root / "slurm.conf"
    ports = [free_port() for _ in range(4)]
    conf.write_text(CONF.format(host=os.uname().nodename, root=root, n1=names[0], n2=names[1],
                                ctld_port=ports[0], d_port=ports[1], p1=ports[2], p2=ports[3]))  # fmt: skip
    env = {**os.environ, "SLURM_CONF": str(conf)}
    started = [subprocess.Popen(["slurmctld", "-D", "-f", str(conf)], env=env)]
    time.sleep(1)
    started += [subprocess.Popen(["slurmd", "-D", "-f", str(conf), "-N", n], env=env)
                for n in names[:2]]  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            out = subprocess.run(["sinfo", "-h", "-o", "%T %D"], env=env, capture_output=True,
                                 text=True).stdout  # fmt: skip
            if out.strip() == "idle 2":
                break
            time.sleep(0.5)
        else:
            pytest.skip(f"the local SLURM did not come up: {out!r}")
        yield env
    finally:
        for p in reversed(started):  # only the daemons this fixture started
            p.send_signal(signal.SIGTERM)
        for p in started:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.mark.slow
def test_sbatch_on_a_real_local_slurm_trains_like_one_process(dist_data, local_slurm, tmp_path):
    run, log = tmp_path / "run", tmp_path / "job.out"
    sets = [a for o in overrides(dist_data, 4) for a in ("--set", o)]
    env = {**_env(MASTER_PORT=str(free_port())), **local_slurm}
    env["PATH"] = f"{BIN}:{env['PATH']}"
    # the script asks for 8 GPUs and 64 CPUs per node; on this machine: none and 1
    job = subprocess.run(
        ["sbatch", "--wait", "--nodes=2", "--gpus-per-node=0", "--cpus-per-task=1",
         "--time=10", f"--output={log}", str(SBATCH), str(dist_data), str(run), "--quiet",
         *sets],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert job.returncode == 0, job.stdout + job.stderr + log.read_text()[-3000:]
    assert "2 nodes x 1 workers" in log.read_text()
    train(dist_data, tmp_path / "single", 4)
    assert losses(run) == losses(tmp_path / "single")
