"""Automatic micro-batch size (`train.auto_micro_batch = true`, `llmtrain train --auto-micro-batch`).

Candidates are the divisors of the per-rank batch (batch_size / world), so accumulation =
batch / (micro × world) is exact and the global batch — hence the training dynamics — is kept.

- CUDA: binary search over the candidates with a real training step at each size: forward +
  backward of the objective (twice when that size accumulates, so the first micro-batch's
  gradients are held during the second forward, as in training), then an optimizer step of a
  throwaway optimizer of the run's kind at LR 0 (it allocates the real optimizer state and
  its temporaries; the weights do not move). A size fits when no `torch.OutOfMemoryError`
  is raised AND its peak allocation stays below (1 − `MARGIN`) of the memory the process
  could use (allocator fragmentation, eval, the fused-kernel workspace of later steps). The
  model's RNG state is restored afterwards.
- CPU: there is no OOM to catch (the kernel kills the process), so the largest candidate
  whose estimated memory fits `budget_frac` of the available memory is taken: weights +
  gradients + optimizer state (`state_bytes`), plus per sequence of T tokens the activations
  (Korthikanti et al. 2022, table 2, fp32 = 2× their 16-bit bytes):
  n_layer · T · (34·d + 5·n_head·T) · 2 bytes, and 3 · T · vocab · 4 bytes for logits, their
  softmax and its gradient — or, with the LM head fused with the loss (`objective.fused_loss`),
  T · d · 4 bytes for the head input's gradient, and the logits' bytes capped at two chunks.

The chosen size is written into the run's config.json, so `--resume` does not search again.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch

MARGIN = 0.10  # share of the usable device memory a probed size must leave free
# optimizer state per parameter element, in units of the parameter's own size
# (muon: 1 on its matrices, 2 on the AdamW rest; counted as 2 to stay on the safe side)
STATE_PER_ELEMENT = {"adamw": 2.0, "muon": 2.0, "sgd": 1.0, "adafactor": 0.0}


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


class MemoryMeter(Protocol):
    def start(self) -> None: ...  # before a trial: reset the peak counter
    def peak_fraction(self) -> float: ...  # after it: peak / memory the process could use


class CudaMeter:
    def __init__(self, device: torch.device):
        self.device, self.usable = device, 1

    def start(self) -> None:
        torch.cuda.reset_peak_memory_stats(self.device)
        free, _ = torch.cuda.mem_get_info(self.device)
        self.usable = free + torch.cuda.memory_allocated(self.device)  # ours + still free

    def peak_fraction(self) -> float:
        return torch.cuda.max_memory_allocated(self.device) / self.usable


def oom_probe(
    trial: Callable[[int], None],
    device: torch.device,
    meter: MemoryMeter | None = None,
    margin: float = MARGIN,
) -> Callable[[int], bool]:
    """`fits(m)`: run `trial(m)`; False on an out-of-memory error (memory freed after) or,
    with a `meter`, when the trial's peak left less than `margin` of the memory free."""

    def fits(m: int) -> bool:
        try:
            if meter is not None:
                meter.start()
            trial(m)
            return meter is None or meter.peak_fraction() <= 1.0 - margin
        except torch.OutOfMemoryError:
            return False
        finally:
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()

    return fits


def state_bytes(model: torch.nn.Module, optimizer: str) -> int:
    """Weights + gradients + optimizer state of the trainable parameters, in bytes."""
    per = 2.0 + STATE_PER_ELEMENT.get(optimizer, 2.0)
    params = [p for p in model.parameters() if p.requires_grad]
    return int(sum(p.numel() * p.element_size() * per for p in params))


def activation_bytes_per_sequence(
    n_layer: int, n_embd: int, n_head: int, seq_len: int, vocab: int, fused_loss: bool = False
) -> int:
    """Estimated fp32 training activation memory of one sequence (see the module docstring)."""
    per_layer = seq_len * (34 * n_embd + 5 * n_head * seq_len) * 2
    head = seq_len * n_embd * 4 if fused_loss else 3 * seq_len * vocab * 4
    return n_layer * per_layer + head


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


def trial_step(
    model: torch.nn.Module,
    step_fn: Any,
    objective: Any,
    prec: Any,
    vocab: int,
    seq: int,
    make_optimizer: Callable[[], torch.optim.Optimizer],
    per_rank: int,
) -> Callable[[int], None]:
    """`trial(m)`: one training step at micro-batch m on random tokens — forward + backward
    (a second micro-batch when m < per_rank, gradients held), then a step of
    `make_optimizer()` (LR 0: state allocated, weights unchanged); gradients and the throwaway
    optimizer are dropped and the RNG state (dropout, masking) is restored."""

    def trial(m: int) -> None:
        devices = [prec.device] if prec.device.type == "cuda" else []
        opt = None
        with torch.random.fork_rng(devices=devices):
            g = torch.Generator().manual_seed(0)
            x = torch.randint(0, vocab, (m, seq + 1), generator=g)
            batch = objective.make_batch((x[:, :-1], x[:, 1:]), step=0, micro=0).to(prec.device)
            try:
                for _ in range(2 if m < per_rank else 1):
                    with prec.autocast():
                        out = objective.forward(step_fn, batch)
                    loss, _ = objective.loss(out, batch)
                    loss.backward()
                    del out, loss
                opt = make_optimizer()
                opt.step()
            finally:
                model.zero_grad(set_to_none=True)
                del opt

    return trial


def choose_micro_batch(
    cfg, model, step_fn, objective, prec, world_size: int, vocab: int, budget_frac: float = 0.5
) -> int:
    """The largest micro-batch (a divisor of batch_size / world) that fits this device.
    Under several processes each trial skips the gradient all-reduce and the ranks agree on
    the smallest answer; FSDP's forward itself communicates, so it is refused there."""
    from llmtrain.distributed import all_sum, grad_sync
    from llmtrain.errors import ConfigError
    from llmtrain.optim import build_optimizer

    t, m = cfg.train, cfg.model
    sizes = candidates(t.batch_size, world_size)
    if prec.device.type == "cuda":
        if world_size > 1 and cfg.distributed.strategy == "fsdp":
            raise ConfigError(
                "train.auto_micro_batch is not supported with distributed.strategy=fsdp; "
                "set train.micro_batch_size explicitly"
            )
        trial = trial_step(
            model, step_fn, objective, prec, vocab, m.block_size,
            make_optimizer=lambda: build_optimizer(model, cfg.optim, 0.0),
            per_rank=t.batch_size // world_size,
        )  # fmt: skip

        def no_sync_trial(size: int) -> None:
            with grad_sync(step_fn, enabled=False):
                trial(size)

        probe = oom_probe(no_sync_trial, prec.device, CudaMeter(prec.device))

        def fits(size: int) -> bool:  # all ranks must agree, or they would diverge
            ok = probe(size)
            return all_sum(0.0 if ok else 1.0, prec.device) == 0

    else:
        fused = bool(getattr(objective, "fused_loss", False))
        per_seq = activation_bytes_per_sequence(
            m.n_layer, m.n_embd, m.n_head, m.block_size, m.vocab_size, fused
        )
        fixed = state_bytes(model, cfg.optim.name) if model is not None else 0
        budget = budget_frac * available_memory_bytes() / world_size - fixed
        if not fused:
            fits = budget_probe(per_seq, budget)
        else:  # + the logits, as unfused, up to the fused op's chunk (and its copies)
            cap = 2 * objective.loss_chunk_mib * 2**20
            logits = 3 * m.block_size * m.vocab_size * 4  # per sequence

            def fits(size: int) -> bool:
                return size * per_seq + min(size * logits, cap) <= budget

    return largest_that_fits(sizes, fits)
