"""Which global samples each micro-batch reads: `Sampler.sample_range(step, micro, rank)`, a
pure function of two pieces of data, the `BatchRamp` (batch-size / sequence-length warm-up)
and the `DataSkips` (windows dropped by spike rollbacks). It never touches the data: the
trainer reads the range from its sample source (`TrainBatches.samples`, or any dataset that
can address samples by index), so resume is exact and fine-tuning sets can use it as is.

- batch-size warm-up: step s has a(s) = a0 + ⌊(A − a0) · s / W⌋ micro-batches per rank
  (a0 from `train.batch_size_start`, A the full accumulation, W = `train.batch_warmup_steps`),
  i.e. B(s) = a(s) · micro · world sequences. Step s reads samples [S(s), S(s) + B(s)) with
  S(s) = Σ_{i<s} B(i), a prefix sum precomputed over the warm-up (then linear), so no
  sample is skipped or repeated and any step's data can be addressed directly.
- sequence-length warm-up: for s < `train.seq_warmup_steps` each window of T = block_size
  tokens is cut into T / L(s) rows of L(s) tokens (`split_rows`), with L(s) the largest
  divisor of T at most L0 + (T − L0) · s / W (Li et al. 2022, "The stability-efficiency
  dilemma"). Tokens per step stay the same. Decoder objectives only.
- skips: from step s on, every step reads `shift(s)` samples further (`train/rollback.py`);
  they are loop state, saved in every checkpoint.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from llmtrain.errors import ConfigError
from llmtrain.train.config import TrainConfig


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


@dataclass(frozen=True)
class BatchRamp:
    """The batch of each step: micro-batches per rank and the row length (warm-ups)."""

    micro: int  # sequences per rank per micro-batch
    world: int  # processes
    seq_len: int  # model.block_size
    full_accum: int  # micro-batches per rank after the warm-up
    accum0: int  # ... at step 0
    batch_warmup: int = 0
    seq0: int = 0  # row length at step 0 (seq_len when there is no warm-up)
    seq_warmup: int = 0
    offsets: tuple[int, ...] = field(default=(0,), repr=False)  # S(s) for s <= batch_warmup

    @classmethod
    def from_config(cls, t: TrainConfig, world_size: int, seq_len: int) -> BatchRamp:
        """The ramp of a resolved train config (errors name the key and the fix)."""
        micro, full = t.micro_for(world_size), t.grad_accum(world_size)
        per_accum, start = micro * world_size, t.batch_size_start or t.batch_size
        if t.batch_warmup_steps and (start % per_accum or not 0 < start <= t.batch_size):
            raise ConfigError(
                f"train.batch_size_start ({start}) must be a positive multiple of micro-batch x "
                f"world size ({per_accum}) and at most train.batch_size ({t.batch_size})"
            )
        seq0 = t.seq_len_start or seq_len
        if t.seq_warmup_steps and not 0 < seq0 <= seq_len:
            raise ConfigError(
                f"train.seq_len_start ({seq0}) must be in [1, model.block_size={seq_len}]"
            )
        if t.seq_warmup_steps and t.objective not in ("clm", "prefix_lm"):
            raise ConfigError(
                f"train.seq_warmup_steps needs a decoder objective (clm, prefix_lm); "
                f"train.objective is {t.objective!r}: set train.seq_warmup_steps=0"
            )
        ramp = cls(
            micro=micro,
            world=world_size,
            seq_len=seq_len,
            full_accum=full,
            accum0=start // per_accum,
            batch_warmup=t.batch_warmup_steps,
            seq0=seq0,
            seq_warmup=t.seq_warmup_steps,
        )
        offsets = [0]
        for s in range(ramp.batch_warmup):
            offsets.append(offsets[-1] + ramp.batch_size(s))
        return dataclasses.replace(ramp, offsets=tuple(offsets))

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
        """Global samples consumed before `step` (warm-up included, skips not)."""
        if step <= self.batch_warmup:
            return self.offsets[step]
        return self.offsets[-1] + (step - self.batch_warmup) * self.batch_size(step)

    def seq_len_at(self, step: int) -> int:
        """Tokens per row at `step` (a divisor of seq_len)."""
        if step >= self.seq_warmup:
            return self.seq_len
        target = max(self.seq0 + (self.seq_len - self.seq0) * step / self.seq_warmup, 1)
        return max(d for d in range(1, self.seq_len + 1) if self.seq_len % d == 0 and d <= target)


@dataclass
class Sampler:
    """(step, micro, rank) → the range of global samples that micro-batch reads."""

    ramp: BatchRamp
    skips: DataSkips = field(default_factory=DataSkips)

    def position(self, step: int) -> int:
        """Index of the first global sample step `step` reads (warm-up and skips included)."""
        return self.ramp.sample_offset(step) + self.skips.shift(step)

    def sample_range(self, step: int, micro: int, rank: int = 0) -> range:
        r = self.ramp
        start = self.position(step) + (micro * r.world + rank) * r.micro
        return range(start, start + r.micro)


def split_rows(
    sample: tuple[torch.Tensor, torch.Tensor], rows: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token windows (M, T) cut into (M·T/rows, rows): the same tokens in shorter rows."""
    x, y = sample
    if x.size(1) == rows:
        return x, y
    return x.reshape(-1, rows), y.reshape(-1, rows)
