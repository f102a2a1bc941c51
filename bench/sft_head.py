#!/usr/bin/env python
"""Benchmark: SFT step speed with the LM head at the assistant tokens only (sparse prediction,
the default) against the same trainer's step with the head at every position (prompt and
padding included: what the step did before), in interleaved rounds.

The fine-tune is built as `llmtrain finetune --task sft` builds it (`finetune.api.
resolve_config` + `FinetuneTask` + `Trainer`); both engines share its model, optimizer and
data order, and differ only in `objective.sparse_head` (`--unfused-loss`: a third engine, the
sparse step with `objective.fused_loss` off). Prints the share of positions the head
runs at, the median tokens/s of each (every position read counts as a token, as in the train
records), their ratio and the FLOPs per token each step counts; the last line is JSON.

Usage: OMP_NUM_THREADS=2 python bench/sft_head.py --base RUN --data chat.jsonl
       [--rounds 5] [--round-steps 5] [--batch 16] [--threads 2] [--set KEY=VALUE]
e.g. the base and instruction set of bench/finetune_sft.py (`--base /tmp/ftbench/pretrain_run
--data /tmp/sftbench/train.jsonl`). The machine is shared: run it alone (flock).
"""

from __future__ import annotations

import argparse
import json
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
    p.add_argument("--base", required=True, help="a llmtrain run or a local HF model directory")
    p.add_argument("--data", required=True, type=Path, help="chat JSONL ({'messages': [...]})")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--round-steps", type=int, default=5)
    p.add_argument("--warmup-steps", type=int, default=2)
    p.add_argument("--batch", type=int, default=16, help="conversations per step")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--unfused-loss", action="store_true",
                   help="interleave the sparse step with its loss unfused (whole logits)")  # fmt: skip
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for both engines, e.g. objective.fused_loss=off")  # fmt: skip
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from llmtrain.finetune.api import resolve_config
    from llmtrain.finetune.task import FinetuneTask
    from llmtrain.train.trainer import Trainer

    torch.set_num_threads(args.threads)
    sets = [f"train.batch_size={args.batch}", f"train.micro_batch_size={args.batch}",
            f"train.threads={args.threads}", "train.max_steps=1000000", "train.eval_every=1000000",
            "train.checkpoint_every=1000000", "monitor.detail_every=0", *args.set]  # fmt: skip
    cfg = resolve_config(args.base, "sft", str(args.data), {}, sets)
    with tempfile.TemporaryDirectory(prefix="llmtrain-bench-") as tmp:
        task = FinetuneTask(cfg, lambda _: None)
        tr = Trainer(cfg, Path(tmp) / "run", show_progress=False, task=task)
        fused = tr.objective.fused_loss  # as the trainer resolved it
        counts = {k: [0, 0.0] for k in ("sparse", "dense", "sparse_unfused")}  # tokens, FLOPs

        def engine(name: str, sparse: bool, fused: bool):
            def step() -> None:
                tr.objective.sparse_head, tr.objective.fused_loss = sparse, fused
                out = tr.train_step()
                counts[name][0] += out["tokens"]
                counts[name][1] += out["flops"]

            return step

        engines = {"sparse": engine("sparse", True, fused), "dense": engine("dense", False, fused)}
        if args.unfused_loss:  # the sparse step with its loss unfused (whole logits)
            engines["sparse_unfused"] = engine("sparse_unfused", True, False)
        for fn in engines.values():
            for _ in range(args.warmup_steps):
                fn()
        rates: dict[str, list[float]] = {k: [] for k in engines}
        for _ in range(args.rounds):  # interleaved: both see the same machine load
            for name, fn in engines.items():
                before = counts[name][0]
                t0 = time.perf_counter()
                for _ in range(args.round_steps):
                    fn()
                tokens = counts[name][0] - before
                rates[name].append(tokens / (time.perf_counter() - t0))
        tr.objective.sparse_head = True
        batches = [tr.objective.make_batch(tr.source.samples(i * args.batch, args.batch))
                   for i in range(20)]  # fmt: skip
        share = sum(b.n_predicted for b in batches) / sum(b.targets.numel() for b in batches)
    med = {k: statistics.median(v) for k, v in rates.items()}
    result = {
        "base": str(args.base),
        "model": f"{cfg.model.n_layer} x {cfg.model.n_embd}, vocab {cfg.model.vocab_size}",
        "batch": args.batch,
        "threads": args.threads,
        "rounds": args.rounds,
        "head_share": round(share, 3),
        "sparse_tokens_per_sec": round(med["sparse"]),
        "dense_tokens_per_sec": round(med["dense"]),
        "ratio": round(med["sparse"] / med["dense"], 3),
        "sparse_flops_per_token": round(counts["sparse"][1] / max(1, counts["sparse"][0])),
        "dense_flops_per_token": round(counts["dense"][1] / max(1, counts["dense"][0])),
        "fused_loss": fused,
    }
    if args.unfused_loss:
        result["sparse_unfused_tokens_per_sec"] = round(med["sparse_unfused"])
        result["vs_unfused_loss"] = round(med["sparse"] / med["sparse_unfused"], 3)
    print(
        f"SFT on {result['model']}, {args.batch} conversations a step: the head runs at "
        f"{100 * share:.1f} % of the positions (20 batches)\n"
        f"sparse {result['sparse_tokens_per_sec']:,} tokens/s, dense "
        f"{result['dense_tokens_per_sec']:,} tokens/s: {result['ratio']:.2f}x "
        f"(FLOPs per token {result['sparse_flops_per_token']:,} vs "
        f"{result['dense_flops_per_token']:,})"
    )
    if args.unfused_loss:
        print(f"sparse with the loss unfused (whole logits): "
              f"{result['sparse_unfused_tokens_per_sec']:,} tokens/s; fused / unfused = "
              f"{result['vs_unfused_loss']:.3f} (fused_loss resolved: {fused})")  # fmt: skip
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
