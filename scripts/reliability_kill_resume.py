#!/usr/bin/env python
"""Kill-and-resume reliability check: train a small model, stop it at random moments N times
with a signal drawn (seeded) from SIGKILL, SIGTERM and SIGINT (a checkpoint is written every
step, so many SIGKILLs land in the middle of a checkpoint write), `--resume` after each, and
check that the final loss curve equals an uninterrupted run's BITWISE (CPU, fp32, 1 thread).
Also checked: a SIGTERM/SIGINT stop exits 75 with a checkpoint of the step it finished, and
every resume prints "resuming from step N (checkpoint PATH)" for the latest checkpoint.

    python scripts/reliability_kill_resume.py --data DATA_DIR --kills 20 --steps 60
    python scripts/reliability_kill_resume.py --kills 3 --steps 24   # builds a tiny corpus

With 3 kills or more every signal is sent at least once. Prints the signal plan, a table of the
kills and, last, one JSON line: {"kills", "signals", "resumes", "equal", "problems", ...}.
Exit 0 when the curves are equal and no check failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIGNALS = ("SIGKILL", "SIGTERM", "SIGINT")
EXIT_PREEMPTED = 75  # llmtrain.train.signals: stopped by a signal, checkpointed
RESUMED = re.compile(r"resuming from step (\d+) \(checkpoint (.+)\)")

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


def signal_plan(kills: int, seed: int, names: tuple[str, ...] = SIGNALS) -> list[str]:
    """The signal each kill sends, seeded: every one of `names` at least once when there are
    enough kills (so a 3-kill run always sends SIGKILL, SIGTERM and SIGINT), the rest drawn at
    random, in a random order."""
    rng = random.Random(f"signals-{seed}")
    plan = rng.sample(list(names), min(kills, len(names)))
    plan += [rng.choice(names) for _ in range(kills - len(plan))]
    rng.shuffle(plan)
    return plan


def last_step(run: Path) -> int:
    try:
        done = losses(run)
    except OSError:
        return 0
    return done[-1][0] if done else 0


def checkpoints(run: Path) -> tuple[int | None, bool]:
    """(step of the latest complete checkpoint, whether a partial `.tmp-*` one is left)."""
    names = [p.name for p in (run / "checkpoints").glob("*")] if run.exists() else []
    steps = [int(n[len("step_") :]) for n in names if n.startswith("step_")]
    return (max(steps) if steps else None), any(n.startswith(".tmp") for n in names)


def attempt(
    data: Path,
    run: Path,
    steps: int,
    sig: str | None,
    target: int | None,
    rng: random.Random,
    logs: tuple[Path, Path],
) -> tuple[subprocess.Popen, bool]:
    """One start of `train --resume`; when `target` is set, send `sig` a random 0-30 ms after
    step `target` is logged (a step plus its checkpoint take about that long here, so kills
    land anywhere in step or save). Returns the process and whether the signal was sent."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(logs[0], "w") as out, open(logs[1], "w") as err:
        proc = subprocess.Popen(command(data, run, steps), env=env, stdout=out, stderr=err)
        sent = False
        if target is not None:
            while proc.poll() is None and last_step(run) < target:
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.03))
            if proc.poll() is None:
                proc.send_signal(getattr(signal, sig))
                sent = True
        proc.wait()
    return proc, sent


def run_with_kills(data: Path, run: Path, steps: int, plan: list[str], seed: int) -> list[dict]:
    """Start, signal at a random point, resume; once per entry of `plan`, then run to the end.
    Kill targets stop three steps short of the end, so a signal always lands inside training."""
    rng, kills, log = random.Random(seed), len(plan), []
    logs = run.parent / f"{run.name}-logs"
    logs.mkdir(parents=True, exist_ok=True)
    for i in range(kills + 1):
        t0, start = time.perf_counter(), last_step(run)
        expect_resume, _ = checkpoints(run)
        span = max(1, (steps - 3 - start) // (kills - i + 1))  # spread kills over the run
        target = start + rng.randint(1, span) if i < kills else None
        files = (logs / f"attempt{i}.out", logs / f"attempt{i}.err")
        sig = plan[i] if i < kills else None
        proc, sent = attempt(data, run, steps, sig, target, rng, files)
        said = RESUMED.search(files[0].read_text())
        ckpt, partial = checkpoints(run)
        log.append(
            {
                "attempt": i,
                "signal": sig if sent else None,
                "rc": proc.returncode,
                "sec": round(time.perf_counter() - t0, 2),
                "last_logged_step": last_step(run),
                "checkpoint": ckpt,
                "partial_checkpoint": partial,
                "expected_resume": expect_resume,
                "resumed_from": int(said.group(1)) if said else None,
                "stderr": files[1].read_text()[-2000:],
            }
        )
    return log


def problems(log: list[dict]) -> list[str]:
    """What went wrong in the attempts, one line each (empty: all checks hold)."""
    found = []
    for r in log:
        at, sig, rc = f"attempt {r['attempt']}", r["signal"], r["rc"]
        if r["resumed_from"] != r["expected_resume"]:  # None == None: nothing to resume yet
            found.append(
                f"{at}: printed 'resuming from step {r['resumed_from']}', expected the latest "
                f"checkpoint, step {r['expected_resume']}"
            )
        if sig in ("SIGTERM", "SIGINT"):
            if rc != EXIT_PREEMPTED or f"stopped ({sig})" not in r["stderr"]:
                found.append(f"{at}: {sig} gave rc {rc}, expected {EXIT_PREEMPTED} + 'stopped'")
            if r["checkpoint"] != r["last_logged_step"] or r["partial_checkpoint"]:
                found.append(
                    f"{at}: {sig} left checkpoint step {r['checkpoint']} (partial: "
                    f"{r['partial_checkpoint']}) after finishing step {r['last_logged_step']}"
                )
        elif sig == "SIGKILL" and rc != -signal.SIGKILL:
            found.append(f"{at}: SIGKILL gave rc {rc}")
        elif sig is None and rc != 0:
            found.append(f"{at}: rc {rc} with no signal sent:\n{r['stderr']}")
    return found


def report(
    log: list[dict],
    plan: list[str],
    seed: int,
    steps: int,
    equal: bool,
    bad: list[str],
    final: float | None,
) -> None:
    print(f"{'attempt':>7} {'signal':>7} {'rc':>4} {'sec':>6} {'resumed':>7} {'last step':>9} "
          f"{'ckpt':>5} {'partial ckpt':>12}")  # fmt: skip
    for r in log:
        print(
            f"{r['attempt']:>7} {r['signal'] or '-':>7} {r['rc']:>4} {r['sec']:>6} "
            f"{'-' if r['resumed_from'] is None else r['resumed_from']:>7} "
            f"{r['last_logged_step']:>9} {'-' if r['checkpoint'] is None else r['checkpoint']:>5} "
            f"{str(r['partial_checkpoint']):>12}"
        )
    for line in bad:
        print(f"PROBLEM: {line}")
    sent = [r["signal"] for r in log if r["signal"]]
    summary = {
        "kills": len(sent),
        "signals": {s: sent.count(s) for s in SIGNALS},
        "exit_75": sum(r["rc"] == EXIT_PREEMPTED for r in log),
        "resumes": len(log) - 1,
        "resume_lines": sum(r["resumed_from"] is not None for r in log),
        "mid_checkpoint_kills": sum(r["partial_checkpoint"] for r in log),
        "steps": steps,
        "seed": seed,
        "plan": plan,
        "equal": equal,
        "problems": len(bad),
        "final_loss": final,
    }
    print(json.dumps(summary))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="a prepared DATA_DIR (default: build a tiny one)")
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0, help="seeds the signals and kill moments")
    ap.add_argument("--signals", default=",".join(SIGNALS), help="comma list to draw from")
    ap.add_argument("--workdir", help="where runs go (default: a temp dir)")
    args = ap.parse_args(argv)
    names = tuple(s.strip().upper() for s in args.signals.split(",") if s.strip())
    if not names or set(names) - set(SIGNALS):
        ap.error(f"--signals {args.signals!r}: choose from {','.join(SIGNALS)}")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="llmtrain-reliability-"))
    data = Path(args.data) if args.data else tiny_corpus(work)
    plan = signal_plan(args.kills, args.seed, names)
    print(f"seed {args.seed}: signals {' '.join(plan) or '(none)'}", flush=True)
    ref = work / "reference"  # runs beside the killed one: the test's wall time is halved
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(work / "reference.log", "w") as ref_log:
        ref_proc = subprocess.Popen(
            command(data, ref, args.steps), env=env, stdout=ref_log, stderr=ref_log
        )
    log = run_with_kills(data, work / "killed", args.steps, plan, args.seed)
    if ref_proc.wait() != 0:
        raise SystemExit(f"the uninterrupted reference run failed (rc {ref_proc.returncode})")
    a, b = losses(ref), losses(work / "killed")
    equal = a == b and len(a) == args.steps
    bad = problems(log)
    report(log, plan, args.seed, args.steps, equal, bad, b[-1][1] if b else None)
    return 0 if equal and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
