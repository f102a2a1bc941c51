"""`KVCache`: preallocated per-layer key/value tensors for incremental decoding.

It lives beside the model (not in `generation/`) because attention writes into it, and model
code must not import from packages above it; `llmtrain.generation` re-exports it.
"""

from __future__ import annotations

import torch

from llmtrain.errors import ConfigError
from llmtrain.models.config import ModelConfig


class KVCache:
    """Keys and values of the tokens seen so far, one (B, n_kv_head, max_len, hs) pair per layer.

    `pos` counts the tokens already written. A forward pass calls `update(layer, k, v)` once per
    layer (writing at `pos`) and then `advance(T)` once, so every layer sees the same offset.
    """

    def __init__(
        self,
        n_layer: int,
        batch_size: int,
        n_kv_head: int,
        max_len: int,
        head_dim: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        shape = (batch_size, n_kv_head, max_len, head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layer)]
        self.max_len = max_len
        self.pos = 0

    @classmethod
    def for_model(
        cls,
        cfg: ModelConfig,
        batch_size: int,
        max_len: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> KVCache:
        """A cache shaped for `cfg`; `max_len` defaults to (and may not exceed) block_size."""
        max_len = cfg.block_size if max_len is None else max_len
        if not 0 < max_len <= cfg.block_size:
            raise ConfigError(
                f"KV cache length {max_len} must be in 1..block_size ({cfg.block_size})"
            )
        return cls(cfg.n_layer, batch_size, cfg.kv_heads, max_len, cfg.head_dim, device, dtype)

    @property
    def remaining(self) -> int:
        return self.max_len - self.pos

    def update(
        self, layer: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v (B, n_kv, T, hs) at `pos`; return all keys/values so far (B, n_kv, pos+T, hs)."""
        end = self.pos + k.size(2)
        if end > self.max_len:
            raise ConfigError(
                f"KV cache overflow: {end} tokens > cache length {self.max_len}; "
                "crop the context or allocate a longer cache"
            )
        self.k[layer][:, :, self.pos : end] = k  # (B, n_kv, T, hs)
        self.v[layer][:, :, self.pos : end] = v  # (B, n_kv, T, hs)
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def advance(self, n: int) -> None:
        """Mark `n` more tokens as written (called once per forward, after every layer)."""
        self.pos += n

    def reset(self) -> None:
        """Forget every token; the tensors are reused, stale values are overwritten before use."""
        self.pos = 0
