#!/usr/bin/env python
"""Benchmark: training speed of the shared decoder blocks now against a reference commit.

Issue #4 added model families and options (post-LN, ALiBi, T5 relative bias, MoE, QK-norm,
...) to the blocks every decoder uses; this checks that a plain decoder trains at least as
fast as before. The reference commit's `src/` is extracted with `git archive` into a
temporary folder (the working tree is not touched) and both trees are timed in child
processes (`PYTHONPATH=<tree>/src`), interleaved round by round so both see the same
machine load. One step = forward, cross-entropy, backward, AdamW step, fp32, on random ids.

Shapes: `spine` = configs/shakespeare_char.json (GPT-2 block: LayerNorm, GELU, learned
positions, 4 × 128, block 64, batch 12, vocab 65) and `llama` (RMSNorm, SwiGLU, RoPE, 4 × 256,
block 256, batch 8, vocab 2048).

Usage: python bench/blocks_speed.py [--ref c7b5c9e] [--rounds 7] [--steps 20] [--threads 2]
Run alone (flock /tmp/llmtrain-bench.lock): the machine is shared. Prints a table of median
tokens/s and the ratio now / reference; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# c7b5c9e: spine complete (prepare, trainer, decoder), before the model-families work
DEFAULT_REF = "c7b5c9e"

SHAPES = {
    "spine": {
        "model": {
            "block_size": 64,
            "n_layer": 4,
            "n_head": 4,
            "n_embd": 128,
            "pos_embedding": "learned",
            "norm": "layernorm",
            "mlp": "gelu",
            "bias": True,
            "tie_embeddings": False,
            "vocab_size": 65,
        },
        "batch": 12,
    },
    "llama": {
        "model": {
            "block_size": 256,
            "n_layer": 4,
            "n_head": 4,
            "n_embd": 256,
            "pos_embedding": "rope",
            "norm": "rmsnorm",
            "mlp": "swiglu",
            "bias": False,
            "tie_embeddings": False,
            "vocab_size": 2048,
        },
        "batch": 8,
    },
}

# Runs inside the child with the tree's own llmtrain on sys.path; prints tokens/s.
CHILD = r"""
import json, sys, time, torch
import torch.nn.functional as F
from llmtrain.models.build import build_model
from llmtrain.models.config import ModelConfig
spec, steps, threads = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
model = build_model(ModelConfig(**spec["model"]))
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
B, T, V = spec["batch"], spec["model"]["block_size"], spec["model"]["vocab_size"]
g = torch.Generator().manual_seed(0)
x = torch.randint(0, V, (B, T + 1), generator=g)
def step():
    logits = model(x[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, V), x[:, 1:].reshape(-1))
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
for _ in range(3):
    step()
t0 = time.perf_counter()
for _ in range(steps):
    step()
print(B * T * steps / (time.perf_counter() - t0))
"""


def extract(ref: str, dest: Path) -> Path:
    """The `src/` of commit `ref` under `dest` (via `git archive`)."""
    archive = dest / "src.tar"
    with open(archive, "wb") as f:
        subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], stdout=f, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest / "src"


def tokens_per_sec(src: Path, spec: dict, steps: int, threads: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(spec), str(steps), str(threads)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", default=DEFAULT_REF, help="reference commit (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per round")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shapes", default="spine,llama")
    args = ap.parse_args()

    result: dict = {"ref": args.ref, "rounds": args.rounds, "steps": args.steps}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"ref": extract(args.ref, Path(tmp)), "now": ROOT / "src"}
        print(f"{'shape':<7} {'ref tok/s':>10} {'now tok/s':>10} {'now/ref':>8}")
        for name in args.shapes.split(","):
            spec = SHAPES[name]
            samples: dict[str, list[float]] = {"ref": [], "now": []}
            for r in range(args.rounds):
                # alternate which tree goes first so neither always sees a warmer machine
                order = ("ref", "now") if r % 2 == 0 else ("now", "ref")
                for tree in order:
                    samples[tree].append(
                        tokens_per_sec(trees[tree], spec, args.steps, args.threads)
                    )
            ref, now = (statistics.median(samples[k]) for k in ("ref", "now"))
            ratios = [n / r for n, r in zip(samples["now"], samples["ref"], strict=True)]
            result[name] = {
                "ref_tok_s": round(ref, 1),
                "now_tok_s": round(now, 1),
                "ratio_of_medians": round(now / ref, 3),
                "median_paired_ratio": round(statistics.median(ratios), 3),
            }
            print(f"{name:<7} {ref:>10.0f} {now:>10.0f} {now / ref:>8.3f}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
