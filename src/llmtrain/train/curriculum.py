"""Batch-size and sequence-length warm-up over the loader's global sample stream.

`BatchRamp` keeps `data/loader.py`'s guarantee — the data of a step is a pure function of
(seed, step), so the loader state is one integer and resume is exact — while the batch grows:

- batch-size warm-up: step s has a(s) = a0 + ⌊(A − a0) · s / W⌋ micro-batches per rank
  (a0 from `train.batch_size_start`, A the full accumulation, W = `train.batch_warmup_steps`),
  i.e. B(s) = a(s) · micro · world sequences. Step s reads samples [S(s), S(s) + B(s)) with
  S(s) = Σ_{i<s} B(i), a prefix sum precomputed over the warm-up (then linear), so no
  sample is skipped or repeated and any step's data can be addressed directly.
- sequence-length warm-up: for s < `train.seq_warmup_steps` each window of T = block_size
  tokens is cut into T / L(s) rows of L(s) tokens, with L(s) the largest divisor of T at most
  L0 + (T − L0) · s / W (Li et al. 2022, "The stability-efficiency dilemma"). Tokens per step,
  and so the loss normaliser and the memory of a micro-batch, stay the same; the sample
  stream is untouched. Decoder objectives only (rows must be independent sequences).

With both off the data are the loader's own (bit-identical to before). `DataSkips` moves the
stream past data windows a spike rollback dropped (`train/rollback.py`): from step s on,
every step reads `shift(s)` samples further; the skips are loop state, saved in every
checkpoint, so the data of a step stays a pure function of (seed, step, skips).
"""

from __future__ import annotations

from typing import Any

import torch

from llmtrain.errors import ConfigError


class DataSkips:
    """Skipped windows of the sample stream: (step, samples) = from optimizer step `step` on,
    read `samples` further on."""

    def __init__(self, windows: list[tuple[int, int]] | None = None):
        self.windows = [(int(s), int(n)) for s, n in windows or []]

    def shift(self, step: int) -> int:
        return sum(n for s, n in self.windows if s <= step)

    def add(self, step: int, samples: int) -> None:
        self.windows.append((step, samples))

    def state_dict(self) -> list[list[int]]:
        return [[s, n] for s, n in self.windows]  # JSON


class BatchRamp:
    def __init__(self, t: Any, world_size: int, seq_len: int):  # t: a TrainConfig
        self.micro, self.world, self.seq_len = t.micro, world_size, seq_len
        self.full_accum = t.grad_accum(world_size)
        self.batch_warmup = t.batch_warmup_steps
        per_accum = self.micro * world_size
        start = t.batch_size_start or t.batch_size
        if self.batch_warmup and (start % per_accum or not 0 < start <= t.batch_size):
            raise ConfigError(
                f"train.batch_size_start ({start}) must be a positive multiple of micro-batch x "
                f"world size ({per_accum}) and at most train.batch_size ({t.batch_size})"
            )
        self.accum0 = start // per_accum
        self.seq_warmup, self.seq0 = t.seq_warmup_steps, t.seq_len_start or seq_len
        if self.seq_warmup and not 0 < self.seq0 <= seq_len:
            raise ConfigError(
                f"train.seq_len_start ({self.seq0}) must be in [1, model.block_size={seq_len}]"
            )
        if self.seq_warmup and t.objective not in ("clm", "prefix_lm"):
            raise ConfigError(
                f"train.seq_warmup_steps needs a decoder objective (clm, prefix_lm); "
                f"train.objective is {t.objective!r}: set train.seq_warmup_steps=0"
            )
        # S(s) for s <= W: samples before step s
        self._offsets = [0]
        for s in range(self.batch_warmup):
            self._offsets.append(self._offsets[-1] + self.accum(s) * per_accum)
        self._divisors = [d for d in range(1, seq_len + 1) if seq_len % d == 0]
        self.source: Any = None
        self.skips = DataSkips()

    @property
    def active(self) -> bool:
        return self.batch_warmup > 0 or self.seq_warmup > 0

    def accum(self, step: int) -> int:
        """Micro-batches per rank at optimizer step `step`."""
        if step >= self.batch_warmup:
            return self.full_accum
        return self.accum0 + (self.full_accum - self.accum0) * step // self.batch_warmup

    def batch_size(self, step: int) -> int:
        return self.accum(step) * self.micro * self.world

    def sample_offset(self, step: int) -> int:
        """Global samples consumed before `step` (the loader position in a checkpoint)."""
        if step <= self.batch_warmup:
            return self._offsets[step]
        return self._offsets[-1] + (step - self.batch_warmup) * self.batch_size(step)

    def position(self, step: int) -> int:
        """Index of the first global sample step `step` reads (warm-up and skips included)."""
        return self.sample_offset(step) + self.skips.shift(step)

    def seq_len_at(self, step: int) -> int:
        if step >= self.seq_warmup:
            return self.seq_len
        target = self.seq0 + (self.seq_len - self.seq0) * step / self.seq_warmup
        return max(d for d in self._divisors if d <= max(target, 1))

    def wrap(self, source: Any) -> BatchRamp:
        """Take batches from `source` (a `TrainBatches`) through the ramp."""
        self.source = source
        return self

    def micro_batch(
        self, step: int, micro: int, *, micro_size: int, rank: int = 0, **_: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Micro-batch `micro` of step `step` for `rank` (same signature as the loader's;
        the step's batch size comes from the ramp)."""
        start = self.position(step) + (micro * self.world + rank) * micro_size
        x, y = self.source.samples(start, micro_size)  # (M, T) each
        rows = self.seq_len_at(step)
        if x.size(1) != rows:  # (M·T/L, L): the same tokens in shorter rows
            x, y = x.reshape(-1, rows), y.reshape(-1, rows)
        return x, y

    def __getattr__(self, name: str) -> Any:
        if name == "source":
            raise AttributeError(name)
        return getattr(self.source, name)
