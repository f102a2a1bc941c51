#!/usr/bin/env python
"""Benchmark: what monitoring costs the training step, on the spine benchmark's model
(configs/shakespeare_char.json, Tiny Shakespeare, char tokenizer) at its logging interval.

Two measurements:
1. A/B: the same training, interleaved in rounds, with the full `RunMonitor` (step-time
   split, optimizer hooks, per-group/update norms every monitor.detail_every steps, memory,
   metrics.jsonl) and with a bare logger that only writes metrics.jsonl, as before
   monitoring existed. Noisy on a shared machine: read it with the spread it prints.
2. Instrumented: time spent inside the monitor's own code (measurements, log, hooks) as a
   fraction of the train time of the same runs. This one is precise.

Usage: python bench/monitor_overhead.py [--steps 300] [--rounds 3] [--threads 2]
       [--set monitor.tensorboard=true ...]. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEXT = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


class BareLogger:
    """metrics.jsonl only, no probes: the trainer's logging before monitoring existed."""

    def __init__(self, path: Path):
        from llmtrain.monitor.metrics import MetricsLogger

        self.jsonl = MetricsLogger(path)
        self.clock = argparse.Namespace(data_sec=0.0)  # the trainer adds its data wait here

    def step(self, step: int):
        return contextlib.nullcontext()

    def measurements(self, record: dict) -> dict:
        return {}

    def log(self, record: dict) -> None:
        self.jsonl.log(record)

    def event(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        self.jsonl.close()


def one_run(cfg, out: Path, monitored: bool) -> dict:
    from llmtrain.train.trainer import Trainer

    trainer = Trainer(cfg, out, show_progress=False)
    if not monitored:
        trainer.logger.close()
        trainer.logger.params.remove()  # no optimizer hooks
        trainer.logger = BareLogger(out / "metrics_bare.jsonl")
    result = trainer.fit()  # elapsed_sec stops at the last step: the final eval is not in it
    monitor_sec = 0.0
    if monitored:
        monitor_sec = trainer.logger.overhead_sec + trainer.logger.clock.probe_sec
    return {"train_sec": result["elapsed_sec"], "monitor_sec": monitor_sec}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--text", type=Path, default=DEFAULT_TEXT)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    args = p.parse_args()
    if not args.text.is_file():
        print(f"no corpus at {args.text}; pass --text FILE", file=sys.stderr)
        return 2
    from llmtrain.data.prepare import PrepareConfig, prepare_corpus
    from llmtrain.train.config import load_run_config

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        prepare_corpus([args.text], tmp / "data", PrepareConfig(tokenizer="char"))
        overrides = [
            f"data.path={json.dumps(str(tmp / 'data'))}",
            f"train.max_steps={args.steps}",
            f"train.eval_every={args.steps}",
            f"train.checkpoint_every={args.steps}",
            "train.eval_tokens=4096",
            f"train.threads={args.threads}",
            "train.precision=fp32",
            *args.overrides,
        ]
        files = [ROOT / "configs" / "shakespeare_char.json"]

        def cfg_of():
            return load_run_config(files, None, overrides)

        one_run(cfg_of(), tmp / "warmup", monitored=False)  # page cache, allocator, threads
        rows = {"monitored": [], "bare": []}
        for r in range(args.rounds):
            for name in ("monitored", "bare") if r % 2 == 0 else ("bare", "monitored"):
                res = one_run(cfg_of(), tmp / f"{name}{r}", name == "monitored")
                rows[name].append(res)
                print(
                    f"round {r} {name:9s}: {1000 * res['train_sec'] / args.steps:7.2f} ms/step"
                    + (
                        f", in monitor code {1000 * res['monitor_sec'] / args.steps:.3f} ms/step"
                        if name == "monitored"
                        else ""
                    ),
                    flush=True,
                )
        cfg = cfg_of()
    per_step = {k: [1000 * x["train_sec"] / args.steps for x in v] for k, v in rows.items()}
    med = {k: statistics.median(v) for k, v in per_step.items()}
    ab = 100 * (med["monitored"] - med["bare"]) / med["bare"]
    instr = 100 * statistics.median(x["monitor_sec"] / x["train_sec"] for x in rows["monitored"])
    print(
        f"\nmodel {cfg.model.n_layer}x{cfg.model.n_embd}, batch {cfg.train.batch_size}x"
        f"{cfg.model.block_size}, log_every {cfg.train.log_every}, detail_every "
        f"{cfg.monitor.detail_every}, {args.steps} steps x {args.rounds} rounds"
    )
    print(f"{'variant':10s} {'median ms/step':>15s} {'min':>8s} {'max':>8s}")
    for k, v in per_step.items():
        print(f"{k:10s} {med[k]:15.2f} {min(v):8.2f} {max(v):8.2f}")
    print(f"A/B overhead: {ab:+.2f}% (noise: the spread above); time in monitor code: {instr:.3f}%")
    print(
        json.dumps(
            {
                "bench": "monitor_overhead",
                "steps": args.steps,
                "rounds": args.rounds,
                "log_every": cfg.train.log_every,
                "detail_every": cfg.monitor.detail_every,
                "ms_per_step": med,
                "ab_overhead_pct": round(ab, 3),
                "monitor_code_pct": round(instr, 4),
                "threads": args.threads,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
