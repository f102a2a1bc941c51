"""Position encodings: learned tables live in the model; here are the derived ones.

`RotaryEmbedding` (RoPE cos/sin tables), `SinusoidalPositions` (Vaswani et al. 2017 table),
`ALiBi` (per-head linear distance bias, Press et al. 2022) and `RelativePositionBias` (T5's
bucketed learned bias, Raffel et al. 2020). Tables and slopes are non-persistent buffers
recomputed by `reset_parameters()`, so checkpoints do not carry them. Bias modules return an
additive float bias (nh, T, S) for queries at positions start..start+T-1 over keys 0..S-1.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from llmtrain.models.config import ModelConfig


class RotaryEmbedding(nn.Module):
    """cos/sin tables of RoPE (Su et al. 2021) for positions 0..block_size-1."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.head_dim = cfg.head_dim
        self.max_len = cfg.block_size
        self.theta = cfg.rope_theta
        half = self.head_dim // 2
        self.register_buffer("cos", torch.empty(self.max_len, half), persistent=False)
        self.register_buffer("sin", torch.empty(self.max_len, half), persistent=False)
        if self.cos.device.type != "meta":
            self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        # Computed in float64 so the tables are exact to fp32 rounding even at long positions.
        device = self.cos.device
        half = self.head_dim // 2
        inv_freq = self.theta ** (-torch.arange(half, dtype=torch.float64, device=device) / half)
        t = torch.arange(self.max_len, dtype=torch.float64, device=device)
        angles = torch.outer(t, inv_freq)  # (max_len, hs/2)
        self.cos.copy_(angles.cos())
        self.sin.copy_(angles.sin())

    def forward(self, start: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin for positions start..start+length-1, each (length, hs/2)."""
        return self.cos[start : start + length], self.sin[start : start + length]


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, h, T, hs) by position. Half-split layout (as HF LLaMA's `rotate_half`), so
    LLaMA-style weights map over without permuting q/k rows."""
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)  # (T, hs/2); follow bf16 under autocast
    x1, x2 = x.chunk(2, dim=-1)  # (B, h, T, hs/2) each
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)  # (B, h, T, hs)


class SinusoidalPositions(nn.Module):
    """Fixed sin/cos table (max_len, C): even channels sin(p / 10000^(2i/C)), odd channels cos."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.register_buffer("table", torch.empty(cfg.block_size, cfg.n_embd), persistent=False)
        if self.table.device.type != "meta":
            self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        n, c = self.table.shape
        pos = torch.arange(n, dtype=torch.float64, device=self.table.device)[:, None]  # (n, 1)
        inv = 10000.0 ** (-torch.arange(0, c, 2, dtype=torch.float64, device=pos.device) / c)
        table = torch.empty(n, c, dtype=torch.float64, device=pos.device)
        table[:, 0::2] = torch.sin(pos * inv)  # (n, C/2)
        table[:, 1::2] = torch.cos(pos * inv)
        self.table.copy_(table)

    def forward(self, start: int, length: int) -> torch.Tensor:
        return self.table[start : start + length]  # (T, C)


def alibi_slopes(n_head: int) -> torch.Tensor:
    """Head slopes 2^(-8i/n) (Press et al. 2022); for n not a power of two, the paper's
    interleaving of the next power's odd slopes (as in BLOOM and MPT)."""
    closest = 2 ** math.floor(math.log2(n_head))
    base = [2.0 ** (-8.0 * (i + 1) / closest) for i in range(closest)]
    extra = [2.0 ** (-4.0 * (i + 1) / closest) for i in range(2 * closest)][0::2]
    return torch.tensor(base + extra[: n_head - closest], dtype=torch.float32)


class ALiBi(nn.Module):
    """Bias -slope_h * distance: |i - j| for an encoder, (i - j) under the causal mask."""

    def __init__(self, cfg: ModelConfig, causal: bool) -> None:
        super().__init__()
        self.n_head, self.causal = cfg.n_head, causal
        self.register_buffer("slopes", torch.empty(cfg.n_head), persistent=False)
        if self.slopes.device.type != "meta":
            self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        self.slopes.copy_(alibi_slopes(self.n_head))

    def forward(self, start: int, length: int, keys: int) -> torch.Tensor:
        q = torch.arange(start, start + length, device=self.slopes.device)[:, None]  # (T, 1)
        k = torch.arange(keys, device=self.slopes.device)[None, :]  # (1, S)
        dist = (q - k).abs().float()  # (T, S); the causal mask hides k > q anyway
        return -self.slopes[:, None, None] * dist  # (nh, T, S)


def t5_bucket(rel: torch.Tensor, bidirectional: bool, buckets: int, max_distance: int):
    """T5's bucket of relative position rel = key - query (HF `_relative_position_bucket`):
    half the buckets are exact small distances, the rest log-spaced up to max_distance."""
    out = torch.zeros_like(rel)
    if bidirectional:
        buckets //= 2
        out = out + (rel > 0).long() * buckets
        rel = rel.abs()
    else:
        rel = -torch.clamp(rel, max=0)
    exact = buckets // 2
    is_small = rel < exact
    large = (
        exact
        + (
            torch.log(rel.float().clamp(min=1) / exact)
            / math.log(max_distance / exact)
            * (buckets - exact)
        ).long()
    )
    large = torch.clamp(large, max=buckets - 1)
    return out + torch.where(is_small, rel, large)


class RelativePositionBias(nn.Module):
    """T5 relative attention bias: one learned scalar per (bucket, head), shared by all layers
    of a stack (computed once per forward)."""

    def __init__(self, cfg: ModelConfig, bidirectional: bool) -> None:
        super().__init__()
        self.bidirectional = bidirectional
        self.buckets, self.max_distance = cfg.rel_buckets, cfg.rel_max_distance
        self.embedding = nn.Embedding(cfg.rel_buckets, cfg.n_head)

    def forward(self, start: int, length: int, keys: int) -> torch.Tensor:
        dev = self.embedding.weight.device
        q = torch.arange(start, start + length, device=dev)[:, None]  # (T, 1)
        k = torch.arange(keys, device=dev)[None, :]  # (1, S)
        bucket = t5_bucket(k - q, self.bidirectional, self.buckets, self.max_distance)  # (T, S)
        return self.embedding(bucket).permute(2, 0, 1)  # (nh, T, S)
