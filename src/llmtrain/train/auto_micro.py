"""Automatic micro-batch size (`train.auto_micro_batch = true`, `llmtrain train --auto-micro-batch`).

Candidates are the divisors of the per-rank batch (batch_size / world), so accumulation =
batch / (micro × world) is exact and the global batch — hence the training dynamics — is kept.

- CUDA: binary search over the candidates with a real forward + backward of the objective at
  each size; a `torch.OutOfMemoryError` means "too big" (caches are emptied and the next
  smaller size is tried). The model's RNG state is restored afterwards.
- CPU: there is no OOM to catch (the kernel kills the process), so the largest candidate
  whose estimated activation memory fits `budget_frac` of the available memory is taken.
  Estimate per sequence of T tokens (Korthikanti et al. 2022, table 2, fp32 = 2× their
  16-bit bytes): n_layer · T · (34·d + 5·n_head·T) · 2 bytes, plus 3 · T · vocab · 4 bytes for
  logits, their softmax and its gradient.

The chosen size is written into the run's config.json, so `--resume` does not search again.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

import torch


def candidates(batch_size: int, world_size: int) -> list[int]:
    per_rank = batch_size // world_size
    return [d for d in range(1, per_rank + 1) if per_rank % d == 0]


def largest_that_fits(sizes: list[int], fits: Callable[[int], bool]) -> int:
    """Largest size for which `fits` is true, assuming fitting is monotone (binary search;
    the smallest size is taken even untested, so training can at least try)."""
    lo, hi = 0, len(sizes) - 1  # sizes[lo] is assumed to fit; search (lo, hi]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(sizes[mid]):
            lo = mid
        else:
            hi = mid - 1
    return sizes[lo]


def oom_probe(trial: Callable[[int], None], device: torch.device) -> Callable[[int], bool]:
    """`fits(m)`: run `trial(m)`; False on an out-of-memory error (memory freed after)."""

    def fits(m: int) -> bool:
        try:
            trial(m)
            return True
        except torch.OutOfMemoryError:
            return False
        finally:
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()

    return fits


def activation_bytes_per_sequence(
    n_layer: int, n_embd: int, n_head: int, seq_len: int, vocab: int
) -> int:
    """Estimated fp32 training activation memory of one sequence (see the module docstring)."""
    per_layer = seq_len * (34 * n_embd + 5 * n_head * seq_len) * 2
    return n_layer * per_layer + 3 * seq_len * vocab * 4


def available_memory_bytes() -> int:
    """MemAvailable from /proc/meminfo (Linux), else 4 GiB as a cautious default."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def budget_probe(per_sequence: int, budget_bytes: float) -> Callable[[int], bool]:
    return lambda m: m * per_sequence <= budget_bytes


def trial_step(model: torch.nn.Module, step_fn, objective, prec, vocab: int, seq: int):
    """`trial(m)`: forward + backward of the objective on m random sequences, grads dropped;
    RNG state (dropout, masking) restored so the run itself is unaffected."""

    def trial(m: int) -> None:
        devices = [prec.device] if prec.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            g = torch.Generator().manual_seed(0)
            x = torch.randint(0, vocab, (m, seq + 1), generator=g)
            batch = objective.make_batch(x[:, :-1], x[:, 1:], step=0, micro=0).to(prec.device)
            try:
                with prec.autocast():
                    out = objective.forward(step_fn, batch)
                loss, _ = objective.loss(out, batch)
                loss.backward()
            finally:
                model.zero_grad(set_to_none=True)

    return trial


def choose_micro_batch(
    cfg, model, step_fn, objective, prec, world_size: int, vocab: int, budget_frac: float = 0.5
) -> int:
    """The largest micro-batch (a divisor of batch_size / world) that fits this device.
    Under several processes each trial skips the gradient all-reduce and the ranks agree on
    the smallest answer; FSDP's forward itself communicates, so it is refused there."""
    from llmtrain.distributed import all_sum, grad_sync
    from llmtrain.errors import ConfigError

    t, m = cfg.train, cfg.model
    sizes = candidates(t.batch_size, world_size)
    if prec.device.type == "cuda":
        if world_size > 1 and cfg.distributed.strategy == "fsdp":
            raise ConfigError(
                "train.auto_micro_batch is not supported with distributed.strategy=fsdp; "
                "set train.micro_batch_size explicitly"
            )
        trial = trial_step(model, step_fn, objective, prec, vocab, m.block_size)

        def no_sync_trial(size: int) -> None:
            with grad_sync(step_fn, enabled=False):
                trial(size)

        probe = oom_probe(no_sync_trial, prec.device)

        def fits(size: int) -> bool:  # all ranks must agree, or they would diverge
            ok = probe(size)
            return all_sum(0.0 if ok else 1.0, prec.device) == 0

    else:
        per_seq = activation_bytes_per_sequence(
            m.n_layer, m.n_embd, m.n_head, m.block_size, m.vocab_size
        )
        fits = budget_probe(per_seq, budget_frac * available_memory_bytes() / world_size)
    return largest_that_fits(sizes, fits)
