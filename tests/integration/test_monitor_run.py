"""Monitoring end to end on a real tiny run: the trackers' own readers see the metrics, the
diagnosis finds nothing wrong, `llmtrain monitor` and the seed script work, the HTML report
renders every plot in headless Chromium (screenshot kept), and the live dashboard in a
pseudo-terminal shows the step and loss of a run being written."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from llmtrain.cli.main import main
from llmtrain.monitor.diagnosis import diagnose
from llmtrain.monitor.runs import load_run
from tests.integration.conftest import tiny_overrides

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def tracked_run(char_data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("mon") / "run"
    sets = tiny_overrides(
        char_data,
        steps=30,
        **{
            "monitor.tensorboard": "true",
            "monitor.wandb": "true",
            "monitor.mlflow": "true",
            "monitor.detail_every": 5,
            "train.log_every": 2,
        },
    )
    args = ["train", "--out", str(run), "--quiet"] + [a for s in sets for a in ("--set", s)]
    assert main(args) == 0
    return run


def test_jsonl_has_the_loop_measurements(tracked_run):
    run = load_run(tracked_run)
    assert len(run.train) == 15 and len(run.evals) == 3
    assert [e["step"] for e in run.events if e["event"] == "checkpoint"] == [10, 20, 30]
    rec = run.train[-1]
    for key in ("step_ms", "data_wait_ms", "compute_ms", "skipped_steps", "peak_rss_gb"):
        assert key in rec, key
    assert rec["skipped_steps"] == 0 and 0 < rec["data_wait_frac"] < 1
    detail = next(r for r in run.train if r["step"] == 10)
    assert {"grad_norm/blocks.0", "grad_norm/wte", "update_ratio/blocks.1", "param_norm"} <= set(
        detail
    )
    assert 1e-5 < detail["update_ratio"] < 1


def test_no_findings_on_a_real_healthy_run(tracked_run):
    bad = [f for f in diagnose(load_run(tracked_run)) if f.severity != "info"]
    assert not bad, [f"{f.rule}: {f.evidence}" for f in bad]


def test_tensorboard_reader_sees_the_metrics(tracked_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tracked_run / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {
        "train/loss",
        "val/loss",
        "train/lr",
        "perf/tokens_per_sec",
        "grad_norm/blocks.0",
    } <= tags
    losses = {e.step: e.value for e in acc.Scalars("train/loss")}
    jsonl = {r["step"]: r["loss"] for r in load_run(tracked_run).train}
    assert losses.keys() == jsonl.keys()
    assert all(abs(losses[s] - jsonl[s]) < 1e-5 for s in jsonl)


def _wandb_records(path: Path) -> list:
    """Records of a .wandb file (W&B's LevelDB-style log: 7-byte header, 32 KiB blocks)."""
    from wandb.proto import wandb_internal_pb2 as pb

    buf, pos, block, pending, out = path.read_bytes(), 7, 32768, b"", []
    assert buf[:4] == b":W&B"
    while pos + 7 <= len(buf):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", buf[pos : pos + 7])
        data, pos = buf[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0:
            pos += left - 7 - length
        elif kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(pending + data if kind == 4 else data)
            out.append(rec)
        elif kind == 2:
            pending = data
        elif kind == 3:
            pending += data
    return out


def test_wandb_offline_run_directory_holds_the_metrics(tracked_run):
    (run_file,) = (tracked_run / "wandb").glob("offline-run-*/run-*.wandb")
    history = [
        {
            item.key or "/".join(item.nested_key): json.loads(item.value_json)
            for item in r.history.item
        }
        for r in _wandb_records(run_file)
        if r.WhichOneof("record_type") == "history"
    ]
    train = [h for h in history if "train/loss" in h]
    jsonl = {r["step"]: r["loss"] for r in load_run(tracked_run).train}
    assert {h["trainer/step"]: h["train/loss"] for h in train} == pytest.approx(jsonl)
    assert any("val/loss" in h for h in history)


def test_mlflow_run_has_metrics_and_config(tracked_run):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tracked_run / 'mlflow.db'}")
    exp = client.get_experiment_by_name("llmtrain")
    (run,) = client.search_runs([exp.experiment_id])
    hist = client.get_metric_history(run.info.run_id, "train/loss")
    jsonl = {r["step"]: r["loss"] for r in load_run(tracked_run).train}
    assert {m.step: m.value for m in hist} == pytest.approx(jsonl)
    assert run.data.params["model.n_layer"] == "2" and run.info.status == "FINISHED"


def test_cli_json_snapshot_and_seed_script(tracked_run, tmp_path, capsys):
    assert main(["monitor", str(tracked_run), "--json"]) == 0
    (out,) = json.loads(capsys.readouterr().out)
    assert out["step"] == 30 and not [f for f in out["findings"] if f["severity"] != "info"]
    assert main(["monitor", str(tracked_run)]) == 0
    assert "step 30/30" in capsys.readouterr().out
    report = tmp_path / "seed.html"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "monitor_training.py"),
            "--log_dir",
            str(tracked_run),
            "--checkpoint_dir",
            str(tracked_run / "checkpoints"),
            "--once",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "step 30/30" in proc.stdout and "step_000030" in proc.stdout
    assert main(["monitor", str(tracked_run), "--report", str(report)]) == 0
    assert report.stat().st_size > 10_000


@pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (scripts/setup_env.sh installs it)"
)
def test_report_renders_every_plot_in_headless_chromium(tracked_run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tracked_run, other, ignore=shutil.ignore_patterns("wandb", "mlflow.db"))
    test = {"accuracy": 0.9, "macro_f1": 0.88, "confusion": [[30, 5], [5, 60]],
            "per_class": {"负面": {"precision": 0.86, "recall": 0.86, "f1": 0.86, "support": 35}}}  # fmt: skip
    (other / "finetune.json").write_text(json.dumps({"metrics": {"test": test}}))
    (other / "labels.json").write_text(json.dumps({"labels": ["负面", "正面"]}))
    report = tmp_path / "report.html"
    assert main(["monitor", str(tracked_run), str(other), "--report", str(report)]) == 0
    n_charts = len(
        json.loads(
            re.search(r'type="application/json">(.*?)</script>', report.read_text(), re.S).group(1)
        )["charts"]
    )
    flags = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        flags + ["--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=90
    ).stdout
    assert 'data-rendered="1"' in dom and f'data-charts="{n_charts}"' in dom
    assert 'id="classifier" data-cells="4"' in dom and "负面" in dom  # the confusion matrix
    svgs = re.findall(r'<svg[^>]*data-title="([^"]*)"[^>]*data-points="(\d+)"', dom)
    assert len(svgs) == n_charts >= 15
    assert all(int(n) >= 2 for _, n in svgs), [t for t, n in svgs if int(n) < 2]
    paths = re.findall(r'<path class="series" d="M[^"]+L[^"]+"', dom)
    assert len(paths) >= 2 * n_charts  # both runs drawn on every chart
    shot = Path(os.environ.get("LLMTRAIN_ARTIFACTS", tmp_path)) / "monitor_report.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        flags + ["--window-size=1400,1800", f"--screenshot={shot}", report.as_uri()],
        capture_output=True,
        timeout=90,
    )
    assert shot.stat().st_size > 20_000


def test_dashboard_in_a_pty_follows_a_run_being_written(tracked_run, tmp_path):
    run = tmp_path / "live"
    run.mkdir()
    shutil.copy(tracked_run / "config.json", run / "config.json")
    lines = (tracked_run / "metrics.jsonl").read_text().splitlines()
    pid, fd = pty.fork()
    if pid == 0:  # child: the dashboard, on a 120x40 terminal
        os.environ.update(COLUMNS="120", LINES="40", TERM="xterm-256color")
        os.execv(
            sys.executable,
            [
                sys.executable,
                "-m",
                "llmtrain.cli.main",
                "monitor",
                str(run),
                "--follow",
                "--interval",
                "0.1",
                "--until-done",
            ],
        )

    started = threading.Event()

    def write_slowly():  # once the dashboard has drawn its first frame
        started.wait(30)
        with (run / "metrics.jsonl").open("a") as fh:
            for line in lines:
                fh.write(line + "\n")
                fh.flush()
                time.sleep(0.15)

    writer = threading.Thread(target=write_slowly)
    writer.start()
    screen, deadline = b"", time.time() + 40
    try:
        while time.time() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break  # the dashboard exited (--until-done)
                if not chunk:
                    break
                screen += chunk
                started.set()
    finally:
        started.set()
        writer.join()
        if os.waitpid(pid, os.WNOHANG) == (0, 0):
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode("utf-8", "replace"))
    last_loss = load_run(tracked_run).train[-1]["loss"]
    assert "step 10/30" in text or "step 12/30" in text  # an intermediate frame was drawn
    assert "step 30/30" in text and f"{last_loss:.4g}" in text
