#!/usr/bin/env python
"""Benchmark: the planner's memory estimate (`llmtrain.plan.memory`) against the measured
peak of real training steps, for three model sizes on this CPU.

Each size runs in its own process: RSS is read before the `Trainer` is built and the process's
peak RSS (`ru_maxrss`) after `--steps` train steps (bf16 autocast where the CPU has it, as a
plain run would choose); measured = peak − before. The text is WikiText-2 with an 8k BPE
vocabulary so the LM head weighs what it does in a real run. Prints a table, then one JSON line.

Usage: python bench/plan_memory.py [--steps 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT = ROOT.parent / "shared" / "data" / "wikitext2" / "wikitext-2-tokenized.test.txt"
SIZES = [(2, 128, 8), (4, 256, 8), (6, 512, 4)]  # (depth, seq, micro-batch)


def rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize()


def measure(data: str, depth: int, seq: int, micro: int, steps: int, threads: int) -> dict:
    """In this process: estimate, then build the Trainer and train `steps` steps."""
    import torch

    from llmtrain.data.shards import read_manifest
    from llmtrain.objectives.fused_loss import FUSE_MIN_LOGITS
    from llmtrain.plan import estimate_memory
    from llmtrain.plan.shape import model_config, model_fields
    from llmtrain.train.config import load_run_config
    from llmtrain.train.precision import cpu_has_native_bf16
    from llmtrain.train.trainer import Trainer

    torch.set_num_threads(threads)
    vocab = int(read_manifest(data)["tokenizer"]["vocab_size"])
    fields = model_fields("gpt2", depth, vocab, seq)
    dtype = torch.bfloat16 if cpu_has_native_bf16() else None
    # as the run resolves objective.fused_loss=auto on a CPU: the fused head + loss for a head
    # of 2^19 logits or more (every size here), which the plan counts as one chunk
    fused = micro * seq * vocab >= FUSE_MIN_LOGITS
    est = estimate_memory(model_config(fields), micro, autocast_dtype=dtype, fused_loss=fused)
    sets = [f"model.{k}={json.dumps(v)}" for k, v in fields.items()]
    sets += [f"data.path={json.dumps(data)}", f"train.batch_size={micro}",
             f"train.micro_batch_size={micro}", f"train.max_steps={steps}",
             "train.eval_every=1000000", "train.checkpoint_every=1000000",
             "monitor.detail_every=0", f"train.threads={threads}"]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        before = rss()
        tr = Trainer(load_run_config([], None, sets), Path(tmp) / "run", show_progress=False)
        for _ in range(steps):
            tr.train_step()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"depth": depth, "seq": seq, "micro": micro, "params_m": round(est.weights / 4e6, 2),
            "estimate_mib": round(est.peak / 2**20, 1), "measured_mib": round((peak - before) / 2**20, 1),
            "fused_loss": fused and tr.objective.fused_loss,
            "parts_mib": {k: round(v, 1) for k, v in est.table()}}  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--one", nargs=4, help=argparse.SUPPRESS)  # DATA DEPTH SEQ MICRO (child)
    args = p.parse_args()
    if args.one:
        d, depth, seq, micro = args.one
        print(json.dumps(measure(d, int(depth), int(seq), int(micro), args.steps, args.threads)))
        return 0
    if not TEXT.is_file():
        print(f"error: {TEXT} not found (../shared/data)", file=sys.stderr)
        return 2
    from llmtrain.data.prepare import PrepareConfig, prepare_corpus

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        prepare_corpus([TEXT], data, PrepareConfig(tokenizer="bpe", vocab_size=8192, workers=1))
        for depth, seq, micro in SIZES:
            cmd = [sys.executable, __file__, "--one", str(data), str(depth), str(seq), str(micro),
                   "--steps", str(args.steps), "--threads", str(args.threads)]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    print(f"{'depth':>5}{'seq':>6}{'micro':>6}{'params M':>10}{'estimate MiB':>14}{'measured MiB':>14}{'error':>8}")  # fmt: skip
    for r in rows:
        r["error"] = round(r["estimate_mib"] / r["measured_mib"] - 1, 3)
        print(f"{r['depth']:>5}{r['seq']:>6}{r['micro']:>6}{r['params_m']:>10}"
              f"{r['estimate_mib']:>14,.1f}{r['measured_mib']:>14,.1f}{r['error']:>+8.1%}")  # fmt: skip
    print(json.dumps({"sizes": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
