"""Sliding-window perplexity: windows score every token once, a short text equals one forward
pass whatever the stride, a long one equals a per-token brute force over the same contexts,
and bits per byte counts UTF-8 bytes (Chinese included)."""

from __future__ import annotations

import math

import pytest
import torch

from llmtrain.errors import ConfigError, DataError
from llmtrain.eval.perplexity import file_perplexity, text_perplexity, token_nll, windows
from llmtrain.models import ModelConfig, build_model
from llmtrain.tokenizer import ByteTokenizer


def tiny(vocab: int, block: int = 8) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=block, vocab_size=vocab)
    return build_model(cfg).eval()


@pytest.mark.parametrize("n, block, stride", [(5, 16, 8), (40, 16, 8), (41, 16, 5), (33, 16, 16)])
def test_windows_tile_every_target_once(n, block, stride):
    scored = []
    for begin, end, first in windows(n, block, stride):
        assert end - begin <= block and begin <= first < end
        scored += range(first, end)
    assert scored == list(range(n))


def test_bad_stride():
    with pytest.raises(ConfigError, match="stride must be in 1..block_size"):
        windows(10, 8, 9)


@torch.no_grad()
def brute(model, ids: list[int], stride: int) -> float:
    """Each target t sees inputs from its window's start: k*stride, k = ceil((t-block+1)/stride)."""
    block, total = model.cfg.block_size, 0.0
    for t in range(len(ids) - 1):
        k = 0 if t < block else math.ceil((t - block + 1) / stride)
        seq = ids[k * stride : t + 1]
        total -= float(torch.log_softmax(model(torch.tensor([seq]))[0, -1], -1)[ids[t + 1]])
    return total


def test_token_nll_matches_brute_force():
    model = tiny(64)
    ids = [int(i) for i in torch.randint(4, 64, (25,), generator=torch.Generator().manual_seed(1))]
    for stride in (3, 8):
        assert token_nll(model, ids, stride, batch_size=3, quiet=True) == pytest.approx(
            brute(model, ids, stride), abs=1e-3
        )
    short = ids[:8]
    assert token_nll(model, short, 3, quiet=True) == pytest.approx(brute(model, short, 8), abs=1e-4)


def test_bits_per_byte_counts_utf8_bytes(tmp_path):
    tok = ByteTokenizer()
    model = tiny(tok.vocab_size)
    text = "语言模型预测下一个字节。The end."
    res = text_perplexity(model, tok, text, stride=8)
    assert res["bytes"] == len(text.encode("utf-8")) == res["tokens"]  # byte tokens
    assert res["bpb"] == pytest.approx(res["loss"] / math.log(2))
    assert res["ppl"] == pytest.approx(math.exp(res["loss"]))
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    assert file_perplexity(model, tok, path, stride=8)["loss"] == pytest.approx(res["loss"])
    path.write_bytes(b"\xff\xfe bad")
    with pytest.raises(DataError, match="not UTF-8"):
        file_perplexity(model, tok, path)
