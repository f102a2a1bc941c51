import numpy as np
import pytest
import torch

from llmtrain.data.loader import TokenWindows, TrainBatches, eval_windows
from llmtrain.errors import DataError


def make_windows(lengths=(1000, 517), seq=16):
    shards, start = [], 0
    for n in lengths:
        shards.append(np.arange(start, start + n, dtype=np.uint16))
        start += n
    return TokenWindows(shards, seq)


def test_windows_are_shifted_pairs_inside_one_shard():
    w = make_windows()
    b = TrainBatches(w, seed=0)
    x, y = b.samples(0, len(w))
    assert x.shape == (len(w), 16) and x.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert torch.all(y[:, -1] - x[:, 0] == 16)  # contiguous, never across a shard boundary


def test_one_epoch_covers_every_window_once():
    w = make_windows()
    b = TrainBatches(w, seed=3)
    x, _ = b.samples(0, len(w))
    starts = sorted(x[:, 0].tolist())
    assert len(set(starts)) == len(w)


def test_stream_is_a_pure_function_of_seed_and_index():
    w = make_windows()
    a, b = TrainBatches(w, seed=1), TrainBatches(w, seed=1)
    xa, _ = a.samples(50, 200)  # crosses into the next epoch
    b.samples(0, 7)
    xb, _ = b.samples(50, 200)
    assert torch.equal(xa, xb)
    xc, _ = TrainBatches(w, seed=2).samples(50, 200)
    assert not torch.equal(xa, xc)


def test_ranks_and_micro_batches_tile_the_global_batch():
    w = make_windows()
    b = TrainBatches(w, seed=0)
    full, _ = b.samples(3 * 8, 8)
    parts = [
        b.micro_batch(3, m, batch_size=8, micro_size=2, rank=r, world_size=2)[0]
        for m in range(2)
        for r in range(2)
    ]
    assert torch.equal(torch.cat(parts), full)


def test_too_small_split_is_a_clear_error():
    with pytest.raises(DataError, match="fewer than one window"):
        TokenWindows([np.arange(10, dtype=np.uint16)], 16, "val")


def test_eval_windows_fixed_and_bounded():
    w = make_windows()
    assert eval_windows(w, 10**9) == list(range(len(w)))
    idx = eval_windows(w, 16 * 10)
    assert len(idx) == 10 and idx == eval_windows(w, 16 * 10)
