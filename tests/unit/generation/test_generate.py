"""generate_tokens against a cache-less reference (including past block_size), determinism,
train-mode restoration and streamed text with multi-byte characters."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
import torch

from llmtrain.config.core import config_from_dict
from llmtrain.errors import ConfigError
from llmtrain.generation import generate_text, generate_tokens, stream_decode
from llmtrain.models import ModelConfig, build_model

V = 260  # 4 special tokens + 256 bytes


class ByteTokenizer:
    """Minimal byte-level tokenizer (ids 0..3 special, byte b -> b + 4): Chinese characters
    span three tokens, which is what streaming has to cope with."""

    kind, vocab_size, pad_id, unk_id, bos_id, eos_id = "byte", V, 0, 1, 2, 3

    def encode(self, text: str) -> list[int]:
        return [b + 4 for b in text.encode("utf-8")]

    def decode(self, ids: Iterable[int]) -> str:
        return bytes(i - 4 for i in ids if i >= 4).decode("utf-8", errors="replace")


def model_of(**kw):
    torch.manual_seed(0)
    base = {"vocab_size": V, "block_size": 16, "n_layer": 2, "n_head": 2, "n_embd": 32}
    return build_model(config_from_dict(ModelConfig, {**base, **kw}))


def reference_greedy(model, prompt: list[int], n: int) -> list[int]:
    """nanoGPT-style generation: full recompute of the last block_size tokens every step."""
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            logits = model.eval()(torch.tensor([ids[-model.cfg.block_size :]]))
            ids.append(int(logits[0, -1].argmax()))
    return ids[len(prompt) :]


@pytest.mark.parametrize("opts", [{}, {"pos_embedding": "rope", "n_kv_head": 1}])
def test_cached_greedy_equals_recompute_across_block_boundary(opts):
    model = model_of(**opts)
    prompt = [5, 17, 99, 42, 7]
    # 5 + 30 tokens crosses block_size 16: the cache is used, then the cropping fallback
    got = list(generate_tokens(model, prompt, 30, temperature=0.0, stop_ids=()))
    assert got == reference_greedy(model, prompt, 30)


def test_prompt_longer_than_block_size_is_cropped():
    model = model_of()
    prompt = list(range(10, 40))
    got = list(generate_tokens(model, prompt, 5, temperature=0.0, stop_ids=()))
    assert got == reference_greedy(model, prompt, 5)


def test_greedy_is_deterministic_and_seeds_reproduce():
    model = model_of()
    a = list(generate_tokens(model, [9, 8], 12, temperature=0.0, stop_ids=()))
    assert a == list(generate_tokens(model, [9, 8], 12, temperature=0.0, stop_ids=()))
    s1 = list(generate_tokens(model, [9, 8], 12, temperature=1.5, seed=1, stop_ids=()))
    assert s1 == list(generate_tokens(model, [9, 8], 12, temperature=1.5, seed=1, stop_ids=()))
    assert s1 != list(generate_tokens(model, [9, 8], 12, temperature=1.5, seed=2, stop_ids=()))


def test_stop_token_ends_generation_and_is_not_yielded():
    model = model_of()
    first = next(generate_tokens(model, [9], 1, temperature=0.0, stop_ids=()))
    assert list(generate_tokens(model, [9], 10, temperature=0.0, stop_ids=(first,))) == []


def test_training_mode_and_grad_mode_are_restored():
    model = model_of(dropout=0.1).train()
    stream = generate_tokens(model, [], 3, temperature=0.0)  # empty prompt starts from BOS
    for _ in stream:
        assert model.training and torch.is_grad_enabled()
    assert model.training


def test_bad_prompt_ids_and_lengths_are_config_errors():
    model = model_of()
    with pytest.raises(ConfigError, match="prompt token ids"):
        list(generate_tokens(model, [V], 2))
    with pytest.raises(ConfigError, match="max_new_tokens"):
        list(generate_tokens(model, [1], -1))
    with pytest.raises(ConfigError, match="temperature"):
        list(generate_tokens(model, [1], 1, temperature=-1.0))


def test_stream_decode_holds_back_partial_characters():
    tok = ByteTokenizer()
    text = "héllo 你好, 世界!"
    pieces = list(stream_decode(tok, tok.encode(text), context_ids=tok.encode("prompt: ")))
    assert "".join(pieces) == text
    assert not any("\ufffd" in p for p in pieces)
    assert "你" in pieces  # emitted as soon as its third byte arrived


def test_stream_decode_flushes_invalid_bytes_at_the_end():
    tok = ByteTokenizer()
    ids = tok.encode("ok") + [0xE4 + 4]  # a lone lead byte of a 3-byte character
    assert "".join(stream_decode(tok, ids)) == "ok\ufffd"


def test_generate_text_streams_the_decoded_continuation():
    tok = ByteTokenizer()
    model = model_of()
    pieces = list(generate_text(model, tok, "你", max_new_tokens=12, temperature=0.0, stop_ids=()))
    ids = list(generate_tokens(model, tok.encode("你"), 12, temperature=0.0, stop_ids=()))
    assert "".join(pieces) == tok.decode(ids)
    empty = "".join(generate_text(model, tok, "", max_new_tokens=6, temperature=0.0, stop_ids=()))
    from_bos = list(generate_tokens(model, [tok.bos_id], 6, temperature=0.0, stop_ids=()))
    assert empty == tok.decode(from_bos)  # an empty prompt starts from BOS
