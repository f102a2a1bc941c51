#!/usr/bin/env python
"""Kill-and-resume reliability check: train a small model, SIGKILL it at random moments
N times (a checkpoint is written every step, so many kills land in the middle of a
checkpoint write), `--resume` after each kill, and check that the final loss curve equals an
uninterrupted run's BITWISE (CPU, fp32, 1 thread).

    python scripts/reliability_kill_resume.py --data DATA_DIR --kills 20 --steps 60
    python scripts/reliability_kill_resume.py --kills 3 --steps 24   # builds a tiny corpus

Prints a table of the kills and, last, one JSON line: {"kills", "resumes", "equal", ...}.
Exit 0 when the curves are equal, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETS = {
    "model.n_layer": 2,
    "model.n_head": 2,
    "model.n_embd": 32,
    "model.block_size": 32,
    "train.batch_size": 8,
    "train.micro_batch_size": 4,
    "train.lr": 3e-3,
    "train.min_lr": 3e-4,
    "train.warmup_steps": 2,
    "train.eval_every": 10,
    "train.eval_tokens": 1024,
    "train.checkpoint_every": 1,  # a checkpoint per step: kills often hit a write
    "train.keep_last": 2,
    "train.log_every": 1,
    "train.precision": "fp32",
    "train.threads": 1,
    "model.dropout": 0.1,  # RNG state must survive the kills too
}


def command(data: Path, run: Path, steps: int) -> list[str]:
    sets = {**SETS, "train.max_steps": steps}
    argv = [sys.executable, "-m", "llmtrain.cli.main", "train", "--data", str(data)]
    argv += ["--out", str(run), "--quiet", "--resume"]
    for k, v in sets.items():
        argv += ["--set", f"{k}={v}"]
    return argv


def losses(run: Path) -> list[tuple[int, float]]:
    out = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "loss" in rec:
            out.append((rec["step"], rec["loss"]))
    return out


def tiny_corpus(root: Path) -> Path:
    from llmtrain.data.prepare import PrepareConfig, prepare_corpus

    rng = random.Random(0)
    words = [
        "the",
        "model",
        "reads",
        "text",
        "and",
        "learns",
        "to",
        "predict",
        "the",
        "next",
        "token",
        "from",
        "context",
    ]
    raw = root / "raw"
    raw.mkdir(parents=True)
    for i in range(30):
        text = "\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(20))
        (raw / f"d{i}.txt").write_text(text + "\n")
    out = root / "data"
    prepare_corpus([raw], out, PrepareConfig(tokenizer="char", val_fraction=0.2, workers=1))
    return out


def last_step(run: Path) -> int:
    try:
        done = losses(run)
    except OSError:
        return 0
    return done[-1][0] if done else 0


def run_with_kills(data: Path, run: Path, steps: int, kills: int, seed: int) -> list[dict]:
    """Start, SIGKILL at a random point, resume; `kills` times, then run to the end. Each
    kill waits for a random target step to be logged, then a random 0-30 ms more (a step plus
    its checkpoint take about that long here, so kills land anywhere in step or save)."""
    rng = random.Random(seed)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = []
    for i in range(kills + 1):
        t0 = time.perf_counter()
        start = last_step(run)
        proc = subprocess.Popen(
            command(data, run, steps), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        span = max(1, (steps - 1 - start) // (kills - i + 1))  # spread kills over the run
        target = start + rng.randint(1, span) if i < kills else None
        if target is not None:
            while proc.poll() is None and last_step(run) < target:
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.03))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        proc.wait()
        ckpts = [p.name for p in (run / "checkpoints").glob("*")] if run.exists() else []
        log.append(
            {
                "attempt": i,
                "rc": proc.returncode,
                "sec": round(time.perf_counter() - t0, 2),
                "last_logged_step": last_step(run),
                "partial_checkpoint": any(c.startswith(".tmp") for c in ckpts),
            }
        )
        if i == kills and proc.returncode != 0:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise SystemExit(f"final resume failed (rc {proc.returncode}):\n{err[-2000:]}")
    return log


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="a prepared DATA_DIR (default: build a tiny one)")
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", help="where runs go (default: a temp dir)")
    args = ap.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="llmtrain-reliability-"))
    data = Path(args.data) if args.data else tiny_corpus(work)
    ref = work / "reference"
    subprocess.run(command(data, ref, args.steps), check=True, stdout=subprocess.DEVNULL)
    log = run_with_kills(data, work / "killed", args.steps, args.kills, args.seed)
    a, b = losses(ref), losses(work / "killed")
    equal = a == b and len(a) == args.steps
    print(f"{'attempt':>7} {'rc':>4} {'sec':>6} {'last step':>9} {'partial ckpt':>12}")
    for r in log:
        print(
            f"{r['attempt']:>7} {r['rc']:>4} {r['sec']:>6} {r['last_logged_step']:>9} "
            f"{str(r['partial_checkpoint']):>12}"
        )
    killed = sum(1 for r in log if r["rc"] == -signal.SIGKILL)
    print(
        json.dumps(
            {
                "kills": killed,
                "resumes": len(log) - 1,
                "mid_checkpoint_kills": sum(r["partial_checkpoint"] for r in log),
                "steps": args.steps,
                "equal": equal,
                "final_loss": b[-1][1] if b else None,
            }
        )
    )
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
