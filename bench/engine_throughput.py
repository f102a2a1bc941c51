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

MFU of a model preset (the GPU runs of the issue: GPT-2 124M and a ~1B Llama, bf16, compiled):

    python bench/engine_throughput.py --preset gpt2-124m --device cuda --micro-batch 16
    python bench/engine_throughput.py --preset llama-1b --device cuda --micro-batch 4 \
        --set distributed.activation_checkpointing=true
    python bench/engine_throughput.py --preset gpt2-tiny --device cpu --compile off   # a smoke run

`--profile N` prints, after the timing, the top kernels of N profiled steps of each engine.

`--dense-head` (objectives with a sparse LM head: mlm, sop, nsp, prefix_lm) interleaves the
same trainer's step with the head at every position (`objective.sparse_head = False`, what
the step did before), and prints ours / dense:

    python bench/engine_throughput.py --preset bert-base --device cpu --compile off \
        --micro-batch 8 --seq 128 --dense-head

`--unfused-loss` interleaves the same trainer's step with the LM head and its loss unfused
(`objective.fused_loss=off`: the whole logits, then the cross-entropy; what the step did
before `objectives/fused_loss.py`) and prints fused / unfused; without `--preset`, a third
Shakespeare engine (eager, unfused) beside the eager one:

    python bench/engine_throughput.py --unfused-loss
    python bench/engine_throughput.py --preset gpt2-mini --device cpu --compile off \
        --micro-batch 8 --seq 256 --set model.vocab_size=32000 --unfused-loss

`--against KEY=VALUE` (repeatable, with `--preset`) interleaves a second trainer built from the
same config plus those overrides, on the same data, and prints ours / against, e.g. the
optimizer's implementation:

    python bench/engine_throughput.py --preset gpt2-mini --device cpu --compile off \
        --micro-batch 16 --seq 128 --set model.vocab_size=4096 --against optim.implementation=foreach

`--reference` (GPT-2 presets) also builds, in the same process, the nanoGPT-style step of
`bench/reference_gpt.py` (whole model + loss compiled together, fused AdamW) at the same shapes,
and measures both in interleaved rounds: `vs_reference` is ours / reference tokens/s. On a CPU
it runs at small shapes, e.g. `--preset gpt2-tiny --device cpu --reference --compile off`.

The text is byte-tokenized and the model keeps the preset's vocabulary (50304, 128256), so the
LM head costs what it costs in a real run. Our train step only (one optimizer step per
micro-batch), compile warm-up untimed; tokens/s is the median of `--rounds` rounds (CUDA
synchronised), MFU = tokens/s × model FLOPs per token (`models/flops.py`, attention included)
/ the peak of `monitor/probes.py`'s table for the GPU (`--peak-tflops` overrides; on a CPU the
measured matmul peak). Prints a table and, last, one JSON line.
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
from llmtrain.monitor.probes import cpu_peak_flops, memory_stats, peak_flops
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


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--text", type=Path, default=DEFAULT_TEXT)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--round-steps", type=int, default=30)
    p.add_argument("--warmup-steps", type=int, default=5, help="untimed steps per engine first")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", default=None, choices=["fp32", "bf16"],
                   help="default: fp32 (engine comparison), bf16 with --preset")  # fmt: skip
    g = p.add_argument_group("model MFU (--preset)")
    g.add_argument("--preset", default=None, help="e.g. gpt2-124m, llama-1b, gpt2-tiny")
    g.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    g.add_argument("--micro-batch", type=int, default=8, help="sequences per step")
    g.add_argument("--seq", type=int, default=None, help="tokens per sequence (preset's)")
    g.add_argument("--compile", default="on", choices=["on", "off"])
    g.add_argument("--peak-tflops", type=float, default=None, help="override the peak table")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    g.add_argument("--reference", action="store_true",
                   help="interleave a nanoGPT-style reference step (bench/reference_gpt.py)")  # fmt: skip
    g.add_argument("--dense-head", action="store_true",
                   help="interleave the same step with the LM head at every position")  # fmt: skip
    p.add_argument("--against", action="append", default=[], metavar="KEY=VALUE",
                   help="interleave a second trainer: the same config with these overrides "
                        "(e.g. optim.implementation=foreach); prints ours / against")  # fmt: skip
    p.add_argument("--unfused-loss", action="store_true",
                   help="interleave the same step with the LM head's loss unfused (logits)")  # fmt: skip
    g.add_argument("--profile", type=int, default=0, metavar="STEPS",
                   help="after timing, profile STEPS steps of each engine: top kernels")  # fmt: skip
    args = p.parse_args(argv)
    if args.against and not args.preset:
        p.error("--against needs --preset (the Shakespeare comparison has its own engines)")
    args.precision = args.precision or ("bf16" if args.preset else "fp32")
    return args


def rate(step, n: int, sync=lambda: None) -> float:
    sync()
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    sync()
    return n / (time.perf_counter() - t0)


def run_preset(args: argparse.Namespace, tmp: Path) -> dict:
    """Tokens/s and MFU of our train step for a model preset on `args.device`."""
    data = tmp / "data"
    prepare_corpus([args.text], data, PrepareConfig(tokenizer="byte", val_fraction=0.1))
    m = args.micro_batch
    sets = [f"data.path={json.dumps(str(data))}", f"train.precision={args.precision}",
            f"train.device={args.device}", f"train.compile={args.compile}",
            f"train.batch_size={m}", f"train.micro_batch_size={m}", f"train.threads={args.threads}",
            "train.eval_every=1000000", "train.checkpoint_every=1000000", "train.warmup_steps=0",
            "monitor.detail_every=0", *([f"model.block_size={args.seq}"] if args.seq else []),
            *args.set]  # fmt: skip
    cfg = load_run_config([], args.preset, sets)
    tr = Trainer(cfg, tmp / "run", show_progress=False)
    dev = tr.prec.device
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    for _ in range(args.warmup_steps):  # the compiled step pays its compile here
        tr.train_step()
    sync()
    warm = time.perf_counter() - t0
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    seq = cfg.model.block_size
    sparse = tr.objective.sparse_head  # as the objective is built
    done = {"flops": 0.0, "tokens": 0}  # our steps' FLOPs: the head where it ran
    fused = tr.objective.fused_loss  # as the trainer resolved it
    engines = {"ours": head_engine(tr, sparse, fused, done)}
    if args.reference:
        engines["reference"] = reference_engine(tr.model.cfg, m, dev, args)
    if args.dense_head:
        if not sparse:
            raise SystemExit(f"error: --dense-head: objective {tr.objective.name!r} already "
                             "runs its head at every position (try mlm, sop, prefix_lm)")  # fmt: skip
        engines["dense_head"] = head_engine(tr, False, fused)
    if args.against:  # the same config and data with these overrides: its own trainer
        other = Trainer(load_run_config([], args.preset, sets + args.against), tmp / "against",
                        show_progress=False)  # fmt: skip
        for _ in range(args.warmup_steps):
            other.train_step()
        engines["against"] = head_engine(other, other.objective.sparse_head,
                                         other.objective.fused_loss)  # fmt: skip
    if args.unfused_loss:
        if not fused:
            raise SystemExit(f"error: --unfused-loss: this run's loss is not fused (objective "
                             f"{tr.objective.name!r}, compile {tr.prec.compile}): try "
                             "--set objective.fused_loss=on")  # fmt: skip
        engines["unfused_loss"] = head_engine(tr, sparse, False)
    rates: dict[str, list[float]] = {k: [] for k in engines}
    peaks = {k: 0.0 for k in engines}
    for _ in range(args.rounds):  # interleaved: both see the same machine state
        for name, fn in engines.items():
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
            rates[name].append(rate(fn, args.round_steps, sync) * m * seq)
            if dev.type == "cuda":
                peaks[name] = max(peaks[name], torch.cuda.max_memory_allocated(dev) / 2**30)
    if args.profile:
        for name, fn in engines.items():
            print_profile(name, fn, args.profile, sync)
    tok_s = statistics.median(rates["ours"])
    ref = {}
    if args.reference:
        ref_tok_s = statistics.median(rates["reference"])
        ref = {"reference_tokens_per_sec": round(ref_tok_s),
               "vs_reference": round(tok_s / ref_tok_s, 3),
               "reference_peak_gib": round(peaks["reference"], 2),
               "reference_spread": round(spread(rates["reference"]), 3)}  # fmt: skip
    if args.dense_head:
        dense_tok_s = statistics.median(rates["dense_head"])
        ref |= {"dense_head_tokens_per_sec": round(dense_tok_s),
                "vs_dense_head": round(tok_s / dense_tok_s, 3),
                "dense_head_spread": round(spread(rates["dense_head"]), 3)}  # fmt: skip
    if args.against:
        other_tok_s = statistics.median(rates["against"])
        ref |= {"against": args.against, "against_tokens_per_sec": round(other_tok_s),
                "vs_against": round(tok_s / other_tok_s, 3),
                "against_spread": round(spread(rates["against"]), 3)}  # fmt: skip
    if args.unfused_loss:
        unfused_tok_s = statistics.median(rates["unfused_loss"])
        ref |= {"unfused_loss_tokens_per_sec": round(unfused_tok_s),
                "vs_unfused_loss": round(tok_s / unfused_tok_s, 3),
                "unfused_loss_peak_gib": round(peaks["unfused_loss"], 2),
                "unfused_loss_spread": round(spread(rates["unfused_loss"]), 3)}  # fmt: skip
    rates = rates["ours"]
    fpt = done["flops"] / max(1, done["tokens"])  # = tr.flops_per_token unless the head is sparse
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    peak = peak_flops(dev, args.peak_tflops, dtype)
    n_params = sum(p.numel() for p in tr.model.parameters())
    return {"preset": args.preset, "device": torch.cuda.get_device_name(dev) if dev.type ==
            "cuda" else "cpu", "precision": args.precision, "compile": tr.prec.compile,
            "compile_mode": cfg.train.compile_mode,
            "params_m": round(n_params / 1e6, 1), "micro_batch": m, "seq": seq,
            "tokens_per_sec": round(tok_s), "spread": round((max(rates) - min(rates)) / tok_s, 3),
            "objective": tr.objective.name, "fused_loss": fused, "flops_per_token": round(fpt),
            "dense_flops_per_token": tr.flops_per_token,
            "peak_tflops": peak and round(peak / 1e12, 1),
            "mfu": peak and round(tok_s * fpt / peak, 4),
            "warmup_sec": round(warm, 1), "rounds": args.rounds, "peak_gib": round(peaks["ours"], 2),
            "sync_free": tr.deferred is not None, **ref,
            **{k: round(v, 2) for k, v in memory_stats(dev).items()}}  # fmt: skip


def print_profile(name: str, step, n: int, sync) -> None:
    """`torch.profiler` over `n` steps of one engine: the kernels and ops taking the most
    device time (self time, so nested ops are not counted twice), per step."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    sync()
    with profile(activities=acts) as prof:
        for _ in range(n):
            step()
        sync()
    avg = prof.key_averages()
    cuda = torch.cuda.is_available()
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    # on a GPU an op row and the kernel rows it launched both carry the kernels' time: sum
    # the kernel rows only (what the profiler's own "Self CUDA time total" counts)
    rows = [e for e in avg if e.device_type == torch.autograd.DeviceType.CUDA] if cuda else avg
    total = sum(getattr(e, key) for e in rows) / n / 1e3
    print(
        f"--- profile {name}: {n} steps, {total:.2f} ms of {'kernel' if cuda else 'CPU'} time per step"
    )
    print(avg.table(sort_by=key, row_limit=18, max_name_column_width=70))


def spread(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values)


def reference_engine(model_cfg, micro: int, dev: torch.device, args: argparse.Namespace):
    """The nanoGPT-style step of bench/reference_gpt.py at our shapes, warmed up."""
    spec = importlib.util.spec_from_file_location(
        "reference_gpt", ROOT / "bench" / "reference_gpt.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if model_cfg.architecture != "decoder" or model_cfg.pos_embedding != "learned":
        raise SystemExit("error: --reference is a GPT-2 step; use a gpt2-* preset")
    dtype = torch.bfloat16 if args.precision == "bf16" else None
    step = mod.reference_step(model_cfg, micro, dev, dtype, args.compile == "on")
    for _ in range(args.warmup_steps):
        step()
    return step


def head_engine(tr: Trainer, sparse: bool, fused: bool, done: dict | None = None):
    """The trainer's step with its LM head where the objective has targets (`sparse`) or at
    every position, fused with the loss or not (`fused`); the engines share the model,
    optimizer and data and differ only there. `done` sums the FLOPs and tokens of the steps."""

    def step():
        tr.objective.sparse_head, tr.objective.fused_loss = sparse, fused
        out = tr.train_step()
        if done is not None and out is not None:
            done["flops"] += out["flops"]
            done["tokens"] += out["tokens"]

    return step


def print_preset(r: dict) -> None:
    mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] else "n/a (unknown peak: --peak-tflops)"
    print(f"{r['preset']} ({r['params_m']}M params) on {r['device']}, {r['precision']}, "
          f"compile {'on' if r['compile'] else 'off'}, micro-batch {r['micro_batch']} x {r['seq']}")  # fmt: skip
    print(f"{'tokens/s':>12}{'MFU':>10}{'peak TFLOP/s':>14}{'spread':>8}{'warm-up s':>11}")
    print(f"{r['tokens_per_sec']:>12,}{mfu:>10}{r['peak_tflops'] or 0:>14}{r['spread']:>8.3f}"
          f"{r['warmup_sec']:>11.1f}")  # fmt: skip
    if "vs_reference" in r:
        print(f"reference (nanoGPT-style, bench/reference_gpt.py): "
              f"{r['reference_tokens_per_sec']:,} tokens/s; ours / reference = {r['vs_reference']:.3f}"
              f" (peak GiB ours {r['peak_gib']}, reference {r['reference_peak_gib']})")  # fmt: skip
    if "vs_dense_head" in r:
        print(f"{r['objective']} with the LM head at every position: "
              f"{r['dense_head_tokens_per_sec']:,} tokens/s; sparse / dense = "
              f"{r['vs_dense_head']:.3f} (FLOPs per token {r['flops_per_token']:,} vs "
              f"{r['dense_flops_per_token']:,.0f})")  # fmt: skip
    if "vs_against" in r:
        print(f"against {' '.join(r['against'])}: {r['against_tokens_per_sec']:,} tokens/s; "
              f"ours / against = {r['vs_against']:.3f}")  # fmt: skip
    if "vs_unfused_loss" in r:
        print(f"{r['objective']} with the head's loss unfused (whole logits): "
              f"{r['unfused_loss_tokens_per_sec']:,} tokens/s; fused / unfused = "
              f"{r['vs_unfused_loss']:.3f} (peak GiB fused {r['peak_gib']}, unfused "
              f"{r['unfused_loss_peak_gib']})")  # fmt: skip


def run(args: argparse.Namespace, tmp: Path) -> dict:
    data = tmp / "data"
    prepare_corpus([args.text], data, PrepareConfig(tokenizer="char"))
    base = [f"data.path={json.dumps(str(data))}", f"train.precision={args.precision}",
            f"train.threads={args.threads}"]  # fmt: skip
    engines, warm_sec, trainers = {}, {}, {}
    variants = [("eager", "off", "auto"), ("compiled", "on", "auto")]
    if args.unfused_loss:
        variants.append(("eager_unfused", "off", "off"))
    for name, compile_mode, fused in variants:
        cfg = load_run_config([ROOT / "configs" / "shakespeare_char.json"], None,
                              [*base, f"train.compile={compile_mode}",
                               f"objective.fused_loss={fused}"])  # fmt: skip
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
    if "eager_unfused" in med:
        result["eager_vs_unfused"] = round(med["eager"] / med["eager_unfused"], 3)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    if not args.text.is_file():
        print(f"error: {args.text} not found (pass --text PATH)", file=sys.stderr)
        return 2
    if args.preset and args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but CUDA is not available (use --device cpu)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="llmtrain-bench-") as tmp:
        if args.preset:
            result = run_preset(args, Path(tmp))
            print_preset(result)
            print(json.dumps(result))
            return 0
        result = run(args, Path(tmp))
    print(f"{'engine':<14}{'tokens/s':>11}{'vs HF':>8}{'MFU':>8}{'spread':>8}{'warm-up s':>11}")
    for k in ("eager", "compiled", "eager_unfused", "hf_reference"):
        if f"{k}_tokens_per_sec" not in result:
            continue
        print(
            f"{k:<14}{result[f'{k}_tokens_per_sec']:>11,}{result[f'{k}_vs_hf']:>8.3f}"
            f"{100 * result[f'{k}_mfu']:>7.2f}%{result[f'{k}_spread']:>8.3f}"
            f"{result[f'{k}_warmup_sec']:>11.1f}"
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
