#!/usr/bin/env python
"""Benchmark: the MoE layer's dispatch (`models/moe.py`: assignments sorted by expert once;
dropless = a matmul per expert on contiguous rows, capacity = padded batched matmuls with no
host synchronisation) against the textbook per-expert loop written here (for each expert:
`torch.where` over the routing table, gather, MLP, scatter-add — two host reads per expert),
forward + backward of one layer under bf16 autocast, the same weights, interleaved rounds.

Prints per shape and capacity factor the median ms of each and loop / ours (> 1: ours is
faster). Usage: OMP_NUM_THREADS=2 python bench/moe_dispatch.py [--rounds 15] [--threads 2]
[--device cpu|cuda] [--grouped auto|on|off: dropless as one grouped GEMM (`torch._grouped_mm`)
where the layer picks it (auto: GROUPED_MM_DEVICES), on this device too, or never]. Run it
alone (flock /tmp/llmtrain-bench.lock); the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from llmtrain.config.core import config_from_dict  # noqa: E402
from llmtrain.models import ModelConfig  # noqa: E402
from llmtrain.models import moe as moe_module  # noqa: E402
from llmtrain.models.moe import MoE  # noqa: E402

SHAPES = [(4, 64, 128, 512), (8, 256, 512, 2048)]  # experts, width, expert FFN, tokens


class LoopMoE(MoE):
    """The same routing, gates, capacity priority and aux loss; the dispatch as a loop."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        xf = x.reshape(-1, C)
        n, E, k = xf.size(0), self.n_experts, self.top_k
        logits = self.router(xf).float()
        probs = logits.softmax(dim=-1)
        gates, chosen = probs.topk(k, dim=-1)
        if self.cfg.moe_renormalize:
            gates = gates / gates.sum(dim=-1, keepdim=True)
        factor = self.cfg.moe_capacity_factor
        cap = math.ceil(factor * n * k / E) if factor else 0
        out = torch.zeros_like(xf)
        counts = torch.zeros(E, dtype=torch.long, device=x.device)
        for e in range(E):
            tok, slot = torch.where(chosen == e)
            counts[e] = tok.numel()
            if cap and tok.numel() > cap:
                keep = (slot * n + tok).argsort()[:cap]
                tok, slot = tok[keep], slot[keep]
            if tok.numel():
                y = self._ffn(xf[tok], self.w_in[e], self.w_out[e])
                out.index_add_(0, tok, (y * gates[tok, slot, None].to(y.dtype)).to(out.dtype))
        self.tokens_per_expert = counts
        self.aux_loss = self._aux(logits, probs, gates, chosen, counts)
        return out.view(B, T, C)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--factors", type=float, nargs="+", default=[0.0, 1.25],
                   help="capacity factors (0 = dropless)")  # fmt: skip
    p.add_argument("--grouped", default="auto", choices=["auto", "on", "off"])
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if args.grouped != "auto":
        moe_module.GROUPED_MM_DEVICES = {dev.type} if args.grouped == "on" else set()
    rows = []
    print(f"{'experts x width x ffn, tokens':>30}{'capacity':>10}{'loop ms':>10}{'ours ms':>10}"
          f"{'loop/ours':>11}")  # fmt: skip
    for E, C, F, N in SHAPES:
        for factor in args.factors:
            cfg = config_from_dict(ModelConfig, {
                "vocab_size": 64, "block_size": 256, "n_layer": 1, "n_head": 4, "n_embd": C,
                "intermediate_size": F, "mlp": "swiglu", "n_experts": E, "moe_top_k": 2,
                "moe_capacity_factor": factor})  # fmt: skip
            torch.manual_seed(0)
            ours = MoE(cfg).to(dev)
            for w in ours.parameters():
                torch.nn.init.normal_(w, std=0.05)
            loop = LoopMoE(cfg).to(dev)
            loop.load_state_dict(ours.state_dict())
            x = torch.randn(4, N // 4, C, device=dev)

            def step(m: MoE, x: torch.Tensor = x) -> None:
                xs = x.clone().requires_grad_()
                with torch.autocast(dev.type, torch.bfloat16):
                    y = m(xs)
                (y.float().square().mean() + m.aux_loss).backward()
                if dev.type == "cuda":
                    torch.cuda.synchronize()

            times: dict[str, list[float]] = {"loop": [], "ours": []}
            for _ in range(3):  # warm-up
                step(loop)
                step(ours)
            for _ in range(args.rounds):  # interleaved
                for name, m in (("loop", loop), ("ours", ours)):
                    t0 = time.perf_counter()
                    step(m)
                    times[name].append(time.perf_counter() - t0)
            lm, om = (statistics.median(times[k]) * 1e3 for k in ("loop", "ours"))
            rows.append({"experts": E, "width": C, "ffn": F, "tokens": N, "capacity": factor,
                         "loop_ms": round(lm, 3), "ours_ms": round(om, 3),
                         "ratio": round(lm / om, 3)})  # fmt: skip
            print(
                f"{f'{E} x {C} x {F}, {N}':>30}{factor:>10}{lm:>10.2f}{om:>10.2f}{lm / om:>11.3f}"
            )
    print(json.dumps({"device": args.device, "threads": args.threads,
                      "grouped": sorted(moe_module.GROUPED_MM_DEVICES), "rows": rows}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
