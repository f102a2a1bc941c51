"""Cross-rank reduction of monitoring records (rank and world size come from
`llmtrain.distributed`'s `current()`; only rank 0 writes).

`reduce_record` is a collective: every rank must call it with the same keys, in the same
order. Outside `torch.distributed` (a single process) it returns the record unchanged."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from llmtrain.distributed.process_group import current

# keys whose cross-rank reduction is not the mean: the worst rank is what matters
MAX_KEYS = ("max_memory_gb", "max_memory_reserved_gb", "peak_rss_gb", "data_wait_ms", "step_ms")
SUM_KEYS = ("tokens_per_sec", "flops_per_sec")


def reduce_record(record: dict[str, Any], device: torch.device | None = None) -> dict[str, Any]:
    """Mean over ranks of every numeric value (sum for throughput, max for memory and waits);
    `step`, `tokens` and non-numeric values are taken from the caller as they are."""
    world = current().world_size
    if world == 1:
        return record
    keys = sorted(
        k
        for k, v in record.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("step", "tokens")
    )
    if not keys:
        return record
    vals = torch.tensor([float(record[k]) for k in keys], dtype=torch.float64, device=device)
    is_max = torch.tensor([k in MAX_KEYS for k in keys], device=vals.device)
    is_sum = torch.tensor([k in SUM_KEYS for k in keys], device=vals.device)
    summed, maxed = vals.clone(), vals.clone()
    dist.all_reduce(summed, op=dist.ReduceOp.SUM)
    dist.all_reduce(maxed, op=dist.ReduceOp.MAX)
    mean = summed / world
    out = torch.where(is_max, maxed, torch.where(is_sum, summed, mean)).tolist()
    reduced = dict(record)
    reduced.update(zip(keys, out))
    return reduced
