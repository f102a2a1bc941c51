#!/usr/bin/env python
"""Benchmark: training tokens/s of our train step, eager vs `torch.compile`, against the
Hugging Face GPT-2 reference loop, at the shapes of `bench/shakespeare_char.py`
(`configs/shakespeare_char.json`: 4 layers, 128 dims, block 64, batch 12, char vocabulary).

Each engine is warmed up first (the compiled one pays its cold compile there, reported as
`compile_warmup_sec`), then measured in interleaved rounds so all see the same machine load;
the table shows the median tokens/s per engine and its ratio to the HF reference, and MFU
against the measured CPU matmul peak (`monitor/probes.py: cpu_peak_flops`).

Usage: python bench/engine_throughput.py [--rounds 5] [--round-steps 30] [--threads 2]
The machine is shared: run it under `flock /tmp/llmtrain-bench.lock`. The last line is JSON.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from llmtrain.data.prepare import PrepareConfig, prepare_corpus
from llmtrain.monitor.probes import cpu_peak_flops
from llmtrain.train.config import load_run_config
from llmtrain.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEXT = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


def reference_step_fn():
    """`hf_step_fn` of bench/shakespeare_char.py: the same reference, not a copy."""
    spec = importlib.util.spec_from_file_location(
        "shakespeare_char", ROOT / "bench" / "shakespeare_char.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.hf_step_fn


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--text", type=Path, default=DEFAULT_TEXT)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--round-steps", type=int, default=30)
    p.add_argument("--warmup-steps", type=int, default=5, help="untimed steps per engine first")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    return p.parse_args()


def rate(step, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return n / (time.perf_counter() - t0)


def run(args: argparse.Namespace, tmp: Path) -> dict:
    data = tmp / "data"
    prepare_corpus([args.text], data, PrepareConfig(tokenizer="char"))
    base = [f"data.path={json.dumps(str(data))}", f"train.precision={args.precision}",
            f"train.threads={args.threads}"]  # fmt: skip
    engines, warm_sec, trainers = {}, {}, {}
    for name, compile_mode in (("eager", "off"), ("compiled", "on")):
        cfg = load_run_config([ROOT / "configs" / "shakespeare_char.json"], None,
                              [*base, f"train.compile={compile_mode}"])  # fmt: skip
        trainers[name] = Trainer(cfg, tmp / name, show_progress=False)
        engines[name] = trainers[name].train_step
    cfg = trainers["eager"].cfg
    seq, micro = cfg.model.block_size, cfg.train.micro
    engines["hf_reference"] = reference_step_fn()(
        cfg, micro, seq, autocast_bf16=args.precision == "bf16"
    )
    for name, fn in engines.items():
        t0 = time.perf_counter()
        for _ in range(args.warmup_steps):
            fn()
        warm_sec[name] = time.perf_counter() - t0
    rates: dict[str, list[float]] = {k: [] for k in engines}
    for _ in range(args.rounds):
        for name, fn in engines.items():
            rates[name].append(rate(fn, args.round_steps) * micro * seq)
    med = {k: statistics.median(v) for k, v in rates.items()}
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    peak = cpu_peak_flops(dtype)
    fpt = trainers["eager"].flops_per_token
    result: dict = {"precision": args.precision, "threads": args.threads,
                    "tokens_per_step": micro * seq, "rounds": args.rounds,
                    "cpu_peak_gflops": round(peak / 1e9, 1),
                    "flops_per_token": fpt}  # fmt: skip
    for k, v in med.items():
        result[f"{k}_tokens_per_sec"] = round(v)
        result[f"{k}_spread"] = round((max(rates[k]) - min(rates[k])) / v, 3)
        result[f"{k}_vs_hf"] = round(v / med["hf_reference"], 3)
        result[f"{k}_mfu"] = round(v * fpt / peak, 4)
        result[f"{k}_warmup_sec"] = round(warm_sec[k], 1)
    return result


def main() -> int:
    args = parse()
    torch.set_num_threads(args.threads)
    if not args.text.is_file():
        print(f"error: {args.text} not found (pass --text PATH)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="llmtrain-bench-") as tmp:
        result = run(args, Path(tmp))
    print(f"{'engine':<14}{'tokens/s':>11}{'vs HF':>8}{'MFU':>8}{'spread':>8}{'warm-up s':>11}")
    for k in ("eager", "compiled", "hf_reference"):
        print(
            f"{k:<14}{result[f'{k}_tokens_per_sec']:>11,}{result[f'{k}_vs_hf']:>8.3f}"
            f"{100 * result[f'{k}_mfu']:>7.2f}%{result[f'{k}_spread']:>8.3f}"
            f"{result[f'{k}_warmup_sec']:>11.1f}"
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
