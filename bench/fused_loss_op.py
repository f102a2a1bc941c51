#!/usr/bin/env python
"""Benchmark: the fused LM head + loss op (`objectives/fused_loss.py`, chunked) against the
plain head + loss (F.linear, then the cross-entropy over the whole logits), forward +
backward of the head alone, at several (rows, vocabulary) shapes, in interleaved rounds.

Prints, per shape, the median milliseconds of each and plain / fused (> 1: the op is faster).
The smallest shapes show where `objective.fused_loss=auto` stops using it
(FUSE_MIN_LOGITS). Usage: OMP_NUM_THREADS=2 python bench/fused_loss_op.py [--width 128]
[--rounds 9] [--precision bf16|fp32] [--shapes 512x256 2048x256 ...] [--whole-chunk: also
the op with its softmax passes over whole chunks, as before CPU cache blocks] [--compiled:
also what a run that compiles does — the plain head with its loss compiled (Inductor's fused
log-softmax over whole logits) against the op with its per-chunk pass compiled; prints
their ratio] [--device cuda]. Run it alone (flock /tmp/llmtrain-bench.lock); the last line
is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from llmtrain.objectives import fused_loss, token_loss  # noqa: E402
from llmtrain.objectives.fused_loss import FUSE_MIN_LOGITS, FusedLinearCE  # noqa: E402

SHAPES = ["512x256", "1024x256", "2048x256", "4096x256", "2048x4096", "2048x32000"]


COMPILED_LOSS = None


def step(x, w, t, fused: bool, dtype, compiled: bool = False) -> None:
    global COMPILED_LOSS
    xs = x.clone().requires_grad_()
    w.grad = None
    with torch.autocast(x.device.type, dtype, enabled=dtype is not None):
        if fused:  # the op itself, whatever the size (auto's threshold is what this measures)
            loss = FusedLinearCE(t, predictions=False, compiled=compiled)(xs, w, None).loss
        elif compiled:  # a compiling run's unfused loss: Inductor's fused log-softmax
            COMPILED_LOSS = COMPILED_LOSS or torch.compile(token_loss)
            loss = COMPILED_LOSS(F.linear(xs, w), t)
        else:
            loss = token_loss(F.linear(xs, w), t)
    loss.backward()
    if x.device.type == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--width", type=int, default=128, help="the head's input width C")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    p.add_argument("--shapes", nargs="+", default=SHAPES, metavar="ROWSxVOCAB")
    p.add_argument("--whole-chunk", action="store_true",
                   help="also the op with its softmax passes over the whole chunk, not in "
                        "cache blocks (what it did before block_rows); prints whole / fused")  # fmt: skip
    p.add_argument("--compiled", action="store_true",
                   help="also the plain head with its loss compiled and the op with its chunk "
                        "pass compiled (what a compiling run does); prints plain / op, compiled")  # fmt: skip
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.precision == "bf16" else None
    rows = []
    blocked = fused_loss.CACHE_BLOCK_BYTES

    if args.compiled:  # the op's compiled chunk pass on every device (the CPU's default: eager)
        fused_loss.EAGER_PASS_DEVICES = set()

    def run(engine: str, x, w, t) -> None:  # plain | fused | whole (one block per chunk)
        fused_loss.CACHE_BLOCK_BYTES = 1 << 50 if engine == "whole" else blocked
        step(x, w, t, "plain" not in engine, dtype, compiled=engine.endswith("_c"))
        fused_loss.CACHE_BLOCK_BYTES = blocked

    engines = ["plain", "fused"] + (["whole"] if args.whole_chunk else [])
    engines += ["plain_c", "fused_c"] if args.compiled else []
    extra = f"{'whole ms':>10}{'whole/fused':>13}" if args.whole_chunk else ""
    if args.compiled:
        extra += f"{'plain_c ms':>11}{'fused_c ms':>11}{'plain_c/fused_c':>16}"
    print(f"{'rows x vocab':>14}{'logits':>12}{'plain ms':>10}{'fused ms':>10}{'plain/fused':>13}{extra}")  # fmt: skip
    for shape in args.shapes:
        n, V = (int(v) for v in shape.split("x"))
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, args.width, generator=g).to(args.device)
        w = torch.nn.Parameter((torch.randn(V, args.width, generator=g) * 0.02).to(args.device))
        t = torch.randint(0, V, (n,), generator=g).to(args.device)
        times: dict[str, list[float]] = {e: [] for e in engines}
        for _ in range(2):  # warm-up
            for e in engines:
                run(e, x, w, t)
        for _ in range(args.rounds):  # interleaved
            for e in engines:
                t0 = time.perf_counter()
                run(e, x, w, t)
                times[e].append(time.perf_counter() - t0)
        ms = {e: statistics.median(v) * 1e3 for e, v in times.items()}
        plain, fused = ms["plain"], ms["fused"]
        row = {"rows": n, "vocab": V, "plain_ms": round(plain, 3),
               "fused_ms": round(fused, 3), "ratio": round(plain / fused, 3)}  # fmt: skip
        line = f"{shape:>14}{n * V:>12,}{plain:>10.2f}{fused:>10.2f}{plain / fused:>13.3f}"
        if args.whole_chunk:
            row.update(whole_ms=round(ms["whole"], 3), whole_ratio=round(ms["whole"] / fused, 3))
            line += f"{ms['whole']:>10.2f}{ms['whole'] / fused:>13.3f}"
        if args.compiled:
            pc, fc = ms["plain_c"], ms["fused_c"]
            row.update(plain_compiled_ms=round(pc, 3), fused_compiled_ms=round(fc, 3),
                       compiled_ratio=round(pc / fc, 3))  # fmt: skip
            line += f"{pc:>11.2f}{fc:>11.2f}{pc / fc:>16.3f}"
        rows.append(row)
        print(line)
    print(f"objective.fused_loss=auto uses the op from {FUSE_MIN_LOGITS:,} logits")
    print(json.dumps({"width": args.width, "precision": args.precision,
                      "device": args.device, "rows": rows}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
