#!/usr/bin/env python
"""Benchmark: the CPU train step with subnormal floats computed as zero (FTZ/DAZ, what every
CPU run does: `train/precision.py: flush_cpu_subnormals`) against the same step computing
them exactly, for a run's trained weights and for the same model freshly initialised.

As a model trains, its attention sharpens: exp(s - max) of the keys a query ignores falls
below fp32's (and bf16's) smallest normal number, 1.2e-38, and x86 cores compute with such
operands through a slow microcode path. A fresh model's attention is near uniform: its row
shows what is left of the gap before training sharpens it.

Four engines share nothing but the process: {trained, fresh} x {flush, exact}; the trained
ones continue from RUN's latest checkpoint (a copy: RUN is not written). Interleaved rounds of
`--round-steps` train steps; prints, per state, the median step time both ways and exact /
flush; the last line is
JSON. `--profile` then names the operators that slow down (measured: the attention's backward,
which recomputes its softmax; the LM head's loss keeps the same time).

Usage: OMP_NUM_THREADS=1 python bench/subnormals.py RUN [--rounds 5] [--round-steps 3]
       [--threads 1] [--profile] [--set KEY=VALUE]
e.g. RUN = a `llmtrain train --plan 10m` run of the README's "Does it pay?". The machine is
shared: run it alone (flock /tmp/llmtrain-bench.lock).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("run", type=Path, help="a decoder run (`llmtrain train`) with a checkpoint")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--round-steps", type=int, default=3)
    p.add_argument("--warmup-steps", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--profile", action="store_true",
                   help="then profile 2 steps of the trained model each way: where the time goes")  # fmt: skip
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for every engine, e.g. objective.fused_loss=off")  # fmt: skip
    return p.parse_args(argv)


def profile_gap(tr, steps: int = 2, top: int = 6) -> list[tuple[str, float, float]]:
    """The operators whose CPU time grows most when subnormals are computed exactly: (name,
    exact ms, flushed ms) per step, from `steps` profiled steps each way."""
    from torch.profiler import ProfilerActivity, profile

    per_op = {}
    for flush in (True, False):
        torch.set_flush_denormal(flush)
        tr.train_step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                tr.train_step()
        per_op[flush] = {e.key: e.self_cpu_time_total / 1e3 / steps for e in prof.key_averages()}
    exact, flushed = per_op[False], per_op[True]
    names = sorted(exact, key=lambda k: flushed.get(k, 0.0) - exact[k])[:top]
    return [(k, exact[k], flushed.get(k, 0.0)) for k in names]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from llmtrain.checkpoint.io import latest_checkpoint
    from llmtrain.errors import LLMTrainError
    from llmtrain.train.config import load_run_config
    from llmtrain.train.trainer import Trainer

    if latest_checkpoint(args.run / "checkpoints") is None:
        print(f"error: no checkpoint under {args.run}/checkpoints (pass a run directory of "
              "`llmtrain train`)", file=sys.stderr)  # fmt: skip
        return 2
    torch.set_num_threads(args.threads)
    sets = [f"train.threads={args.threads}", "train.max_steps=100000000",
            "train.max_time_sec=null", "train.eval_every=100000000",
            "train.checkpoint_every=100000000", "monitor.detail_every=0", *args.set]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="llmtrain-bench-") as tmp:
        trained_dir = Path(tmp) / "trained"
        shutil.copytree(args.run, trained_dir, ignore=shutil.ignore_patterns("*.lock"))
        try:
            cfg = load_run_config([trained_dir / "config.json"], None, sets)
            trainers = {
                "trained": Trainer(cfg, trained_dir, resume=True, show_progress=False),
                "fresh": Trainer(cfg, Path(tmp) / "fresh", show_progress=False),
            }
        except LLMTrainError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        engines = [(state, flush) for state in trainers for flush in (True, False)]
        for state, flush in engines:
            torch.set_flush_denormal(flush)
            for _ in range(args.warmup_steps):
                trainers[state].train_step()
        times: dict[tuple[str, bool], list[float]] = {e: [] for e in engines}
        for _ in range(args.rounds):  # interleaved: all four see the same machine load
            for state, flush in engines:
                torch.set_flush_denormal(flush)
                t0 = time.perf_counter()
                for _ in range(args.round_steps):
                    trainers[state].train_step()
                times[(state, flush)].append((time.perf_counter() - t0) / args.round_steps)
        step = trainers["trained"].step
        gap = profile_gap(trainers["trained"]) if args.profile else []
        for tr in trainers.values():
            tr.logger.close()
    torch.set_flush_denormal(True)
    med = {e: statistics.median(v) for e, v in times.items()}
    m = cfg.model
    result = {"run": str(args.run), "checkpoint_step": step, "threads": args.threads,
              "model": f"{m.n_layer} x {m.n_embd}, vocab {m.vocab_size}", "rounds": args.rounds,
              "round_steps": args.round_steps}  # fmt: skip
    for state in trainers:
        on, off = med[(state, True)], med[(state, False)]
        result[state] = {"flush_step_ms": round(1e3 * on, 1),
                         "exact_step_ms": round(1e3 * off, 1), "exact_over_flush": round(off / on, 3)}  # fmt: skip
        print(f"{state:8s} step {1e3 * on:,.1f} ms flushed, {1e3 * off:,.1f} ms exact: "
              f"{off / on:.3f}x")  # fmt: skip
    if gap:
        print(
            "trained, the operators that slow down most (self CPU ms per step, exact vs flushed):"
        )
        for name, exact, flushed in gap:
            print(f"  {name:60s} {exact:9.1f} {flushed:9.1f}")
    result["profile"] = [
        {"op": n, "exact_ms": round(e, 1), "flush_ms": round(f, 1)} for n, e, f in gap
    ]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
