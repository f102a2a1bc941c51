"""Autoregressive generation with a KV cache: token ids (`generate_tokens`) or streamed text
(`generate_text`, built on `stream_decode`).

Context longer than block_size: while prompt + generated tokens fit in block_size, each step
feeds only the new token through the cache. Once they do not, every further step crops the
context to its last block_size tokens and recomputes it without the cache (positions shift,
so cached keys are stale), exactly as nanoGPT's cache-less `generate` does; the logits are the
same either way, only the cost per token rises from O(1) to O(block_size) forward positions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence

import torch

from llmtrain.errors import ConfigError
from llmtrain.generation.sampling import check_sampling_args, sample_next_token
from llmtrain.models.decoder import Transformer
from llmtrain.models.kv_cache import KVCache
from llmtrain.tokenizer.base import BOS_ID, EOS_ID, Tokenizer

# Tokens of already-streamed text kept as decoding context, so that decoders which depend on
# neighbours (SentencePiece's leading-space rule, byte fallback) render the new piece as they
# would in the whole text.
_CONTEXT_TOKENS = 5
# A trailing U+FFFD is held back while a multi-byte character may still be completing (UTF-8
# is at most 4 bytes); beyond this many pending tokens it is real output, not a partial char.
_MAX_HELD_TOKENS = 8


@contextlib.contextmanager
def _inference(model: torch.nn.Module) -> Iterator[None]:
    """eval() + inference_mode for one step only, so a caller iterating between steps sees
    its own grad mode and the model's original train/eval state."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _next_logits(model: Transformer, ids: list[int], cache: KVCache) -> torch.Tensor:
    """Logits (1, V) of the token after `ids`, reusing `cache` while the context fits."""
    block = model.cfg.block_size
    device = cache.k[0].device
    if len(ids) > block:
        idx = torch.tensor([ids[-block:]], device=device)  # (1, block): cropped context
        hidden = model.forward_hidden(idx)  # (1, block, C)
    else:
        idx = torch.tensor([ids[cache.pos :]], device=device)  # (1, T_new)
        hidden = model.forward_hidden(idx, cache)  # (1, T_new, C)
    return model.logits(hidden[:, -1])  # (1, V): only the last position is needed


def generate_tokens(
    model: Transformer,
    prompt_ids: Sequence[int],
    max_new_tokens: int,
    temperature: float = 0.8,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop_ids: Iterable[int] = (EOS_ID,),
    bos_id: int = BOS_ID,
) -> Iterator[int]:
    """Yield up to `max_new_tokens` sampled token ids after `prompt_ids`.

    Generation ends early at a token in `stop_ids`, which is not yielded. An empty prompt
    starts from `bos_id`. `seed` makes sampling reproducible; temperature 0 is greedy.
    """
    check_sampling_args(temperature, top_k, top_p)
    if max_new_tokens < 0:
        raise ConfigError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    ids = list(prompt_ids) or [bos_id]
    vocab = model.cfg.vocab_size
    if not all(0 <= i < vocab for i in ids):
        raise ConfigError(f"prompt token ids must be in 0..{vocab - 1}; got {ids}")
    stops = frozenset(stop_ids)
    param = next(model.parameters())
    generator = None
    if seed is not None:
        generator = torch.Generator(device=param.device).manual_seed(seed)
    max_len = min(model.cfg.block_size, len(ids) + max_new_tokens)
    cache = KVCache.for_model(model.cfg, 1, max_len, device=param.device, dtype=param.dtype)
    for _ in range(max_new_tokens):
        with _inference(model):
            logits = _next_logits(model, ids, cache)  # (1, V)
            token = int(sample_next_token(logits, temperature, top_k, top_p, generator)[0])
        if token in stops:
            return
        ids.append(token)
        yield token


def stream_decode(
    tokenizer: Tokenizer, token_ids: Iterable[int], context_ids: Sequence[int] = ()
) -> Iterator[str]:
    """Turn a stream of token ids into text pieces whose concatenation is the decoded text.

    Each step decodes the recent tokens with and without the newest ones and yields the
    difference; while that ends in U+FFFD (a character whose bytes span tokens, e.g. Chinese
    under a byte-level vocabulary) it is held back until the character completes.
    `context_ids` (the prompt) is decoding context only; it is never yielded.
    """
    ids = list(context_ids)
    prefix, read = max(0, len(ids) - _CONTEXT_TOKENS), len(ids)
    for token in token_ids:
        ids.append(token)
        before = tokenizer.decode(ids[prefix:read])
        text = tokenizer.decode(ids[prefix:])
        partial = text.endswith("\ufffd") and len(ids) - read < _MAX_HELD_TOKENS
        if len(text) > len(before) and not partial:
            yield text[len(before) :]
            prefix, read = read, len(ids)
    if read < len(ids):  # flush whatever is still held back, invalid bytes included
        before = tokenizer.decode(ids[prefix:read])
        text = tokenizer.decode(ids[prefix:])
        if len(text) > len(before):
            yield text[len(before) :]


def generate_text(
    model: Transformer,
    tokenizer: Tokenizer,
    prompt: str,
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop_ids: Iterable[int] | None = None,
) -> Iterator[str]:
    """Stream the text generated after `prompt`, piece by piece (see `generate_tokens`).

    An empty prompt starts from `tokenizer.bos_id`; `stop_ids` defaults to the EOS token.
    """
    prompt_ids = tokenizer.encode(prompt) if prompt else []
    prompt_ids = prompt_ids or [tokenizer.bos_id]
    stops = (tokenizer.eos_id,) if stop_ids is None else tuple(stop_ids)
    tokens = generate_tokens(
        model,
        prompt_ids,
        max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
        stop_ids=stops,
        bos_id=tokenizer.bos_id,
    )
    yield from stream_decode(tokenizer, tokens, context_ids=prompt_ids)
