"""`Sampler` / `BatchRamp`: batch-size warm-up reads the global sample stream contiguously (no
sample skipped or repeated, any step addressable), and sequence-length warm-up keeps the
tokens. The sampler is a pure function of (step, micro, rank): it never reads data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmtrain.data.loader import TokenWindows, TrainBatches
from llmtrain.errors import ConfigError
from llmtrain.train.config import TrainConfig
from llmtrain.train.curriculum import BatchRamp, DataSkips, Sampler, split_rows


def stream(seq: int = 16) -> TrainBatches:
    tokens = np.arange(20_000, dtype=np.uint16) % 997
    return TrainBatches(TokenWindows([tokens], seq), seed=3)


def test_batch_warmup_ramps_accumulation_and_offsets_are_contiguous():
    t = TrainConfig(batch_size=16, micro_batch_size=2, batch_warmup_steps=6, batch_size_start=4)
    ramp = BatchRamp.from_config(t, world_size=2, seq_len=16)
    assert [ramp.accum(s) for s in range(8)] == [1, 1, 2, 2, 3, 3, 4, 4]
    sizes = [ramp.batch_size(s) for s in range(20)]
    assert [ramp.sample_offset(s) for s in range(21)] == list(np.cumsum([0, *sizes]))


def test_batch_warmup_micro_batches_cover_the_stream_once():
    t = TrainConfig(batch_size=8, micro_batch_size=2, batch_warmup_steps=3, batch_size_start=2)
    sampler = Sampler(BatchRamp.from_config(t, world_size=1, seq_len=16))
    ranges = [sampler.sample_range(s, m) for s in range(6) for m in range(sampler.ramp.accum(s))]
    total = sampler.ramp.sample_offset(6)
    assert [i for r in ranges for i in r] == list(range(total))
    # resume: a step's range does not depend on what was read before
    fresh = Sampler(BatchRamp.from_config(t, world_size=1, seq_len=16))
    assert fresh.sample_range(4, 1) == ranges[1 + 2 + 3 + 4 + 1]


def test_ranks_and_skips_shift_the_range_only():
    t = TrainConfig(batch_size=8, micro_batch_size=2)
    sampler = Sampler(BatchRamp.from_config(t, world_size=2, seq_len=16))
    assert [sampler.sample_range(3, m, r).start for m in (0, 1) for r in (0, 1)] == [24, 26, 28, 30]
    sampler.skips = DataSkips([(2, 40)])
    assert sampler.sample_range(1, 0).start == 8 and sampler.sample_range(3, 0).start == 64


def test_seq_warmup_splits_windows_into_shorter_rows_with_the_same_tokens():
    t = TrainConfig(batch_size=4, micro_batch_size=4, seq_warmup_steps=10, seq_len_start=4)
    src = stream(seq=16)
    ramp = BatchRamp.from_config(t, world_size=1, seq_len=16)
    assert [ramp.seq_len_at(s) for s in (0, 3, 5, 9, 10)] == [4, 4, 8, 8, 16]
    x_full, y_full = src.samples(0, 4)
    x, y = split_rows((x_full, y_full), ramp.seq_len_at(0))
    assert x.shape == (16, 4) and torch.equal(x.reshape(4, 16), x_full)
    assert torch.equal(y.reshape(4, 16), y_full)
    assert split_rows((x_full, y_full), ramp.seq_len_at(12))[0].shape == (4, 16)


def test_ramp_errors_name_the_key():
    with pytest.raises(ConfigError, match="batch_size_start"):
        BatchRamp.from_config(TrainConfig(batch_size=8, micro_batch_size=2, batch_warmup_steps=2,
                                          batch_size_start=3), 1, 16)  # fmt: skip
    with pytest.raises(ConfigError, match="decoder objective"):
        BatchRamp.from_config(
            TrainConfig(seq_warmup_steps=2, seq_len_start=4, objective="mlm"), 1, 16
        )
    assert not BatchRamp.from_config(TrainConfig(batch_size=8), 1, 16).active
