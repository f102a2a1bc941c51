"""Deterministic, resumable, rank-aware batches of token windows for training and eval.

A split's shards are cut into slots of `seq_len` tokens; each epoch draws from (seed, epoch)
a permutation of the slots and, per slot, a random shift in [0, seq_len) of the window of
`seq_len + 1` tokens (inputs and shifted targets) it yields. So every token is seen about
once per epoch, in a new order and at a new position inside its window (with learned
positions, fixed alignment measurably hurts: +0.01 val loss on Tiny Shakespeare). The
global sample stream is a pure function of (seed, sample index): the optimizer step `s` uses
samples [s·B, (s+1)·B), and micro-batch m of rank r takes the slice (m·W + r)·M … + M. So the
loader's whole state is one integer, resume is exact, and a run on 1 or N ranks sees the
same global batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from llmtrain.errors import DataError


class TokenWindows:
    """All windows of `seq_len + 1` tokens at stride `seq_len` starting at `offset`."""

    def __init__(self, shards: Sequence[np.ndarray], seq_len: int, split: str = "train"):
        self.shards = list(shards)
        self.seq_len = seq_len
        total = sum(len(s) for s in self.shards)
        # Slots counted for the largest shift (seq_len - 1) so every shifted window fits.
        self.per_shard = [max(0, (len(s) - seq_len) // seq_len) for s in self.shards]
        self.cum = np.cumsum([0, *self.per_shard])
        if self.cum[-1] == 0:
            raise DataError(
                f"the {split} split has {total} tokens, fewer than one window of "
                f"model.block_size + 1 = {seq_len + 1} (+ offset slack); lower model.block_size "
                "or give `llmtrain prepare` more text (or a larger --val-fraction for val)"
            )

    def __len__(self) -> int:
        return int(self.cum[-1])

    def span(self, i: int, shift: int = 0) -> tuple[int, int, int]:
        """(shard, start, stop): where window `i` shifted by `shift` lies in the shards."""
        shard = int(np.searchsorted(self.cum, i, side="right") - 1)
        start = shift + (i - int(self.cum[shard])) * self.seq_len
        return shard, start, start + self.seq_len + 1

    def window(self, i: int, shift: int = 0) -> np.ndarray:
        shard, start, stop = self.span(i, shift)
        return self.shards[shard][start:stop]

    def batch(
        self, indices: Sequence[int], shifts: Sequence[int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        shifts = [0] * len(indices) if shifts is None else shifts
        rows = np.stack([self.window(int(i), int(s)) for i, s in zip(indices, shifts)])
        rows = rows.astype(np.int64)
        t = torch.from_numpy(rows)  # (B, T+1)
        return t[:, :-1], t[:, 1:]  # inputs (B, T), targets (B, T)


class SampleStream:
    """A global sample stream addressed by index (`samples`); micro-batch m of step s for
    rank r is samples s·B + (m·W + r)·M ... + M, whatever the stream holds."""

    def samples(self, start: int, count: int) -> Any:
        raise NotImplementedError

    def micro_batch(
        self,
        step: int,
        micro: int,
        *,
        batch_size: int,
        micro_size: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> Any:
        """Micro-batch `micro` of optimizer step `step` for `rank`."""
        start = step * batch_size + (micro * world_size + rank) * micro_size
        return self.samples(start, micro_size)


class TrainBatches(SampleStream):
    """The global sample stream over a TokenWindows, addressed by sample index."""

    def __init__(self, windows: TokenWindows, seed: int):
        self.windows = windows
        self.seed = seed
        self._epoch = -1
        self._perm = np.zeros(0, dtype=np.int64)
        self._shift = np.zeros(0, dtype=np.int64)

    def _epoch_state(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, epoch])
            n = len(self.windows)
            self._perm = rng.permutation(n)
            self._shift = rng.integers(0, self.windows.seq_len, size=n)
            self._epoch = epoch
        return self._perm, self._shift

    def token_span(self, sample: int) -> tuple[int, int, int]:
        """(shard, start, stop) of the tokens global sample `sample` reads."""
        epoch, pos = divmod(sample, len(self.windows))
        perm, shift = self._epoch_state(epoch)
        return self.windows.span(int(perm[pos]), int(shift[pos]))

    def samples(self, start: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets for global samples [start, start + count)."""
        n = len(self.windows)
        xs, ys = [], []
        k = start
        while k < start + count:
            epoch, pos = divmod(k, n)
            perm, shift = self._epoch_state(epoch)
            take = min(start + count - k, n - pos)
            x, y = self.windows.batch(perm[pos : pos + take], shift[pos : pos + take])
            xs.append(x)
            ys.append(y)
            k += take
        if len(xs) == 1:
            return xs[0], ys[0]
        return torch.cat(xs), torch.cat(ys)


def eval_windows(windows: TokenWindows, max_tokens: int) -> list[int]:
    """Fixed, evenly spaced window indices covering at most `max_tokens` (all when it fits)."""
    n = len(windows)
    want = max(1, max_tokens // windows.seq_len)
    if want >= n:
        return list(range(n))
    return np.linspace(0, n - 1, want).round().astype(int).tolist()
