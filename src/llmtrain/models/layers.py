"""Building blocks of the decoder: norms, rotary positions, causal self-attention, MLP, Block.

Shapes: B batch, T tokens in this call, S keys attended (T, or cache length), C = n_embd,
nh query heads, nkv key/value heads, hs head size, F = ffn_dim. Every layer takes its
options from `ModelConfig`, so one Block class covers GPT-2 and LLaMA styles.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from llmtrain.models.config import ModelConfig
from llmtrain.models.kv_cache import KVCache


def make_norm(cfg: ModelConfig) -> nn.Module:
    """LayerNorm (bias follows `cfg.bias`) or RMSNorm, both fused kernels from torch."""
    if cfg.norm == "rmsnorm":
        return nn.RMSNorm(cfg.n_embd, eps=cfg.norm_eps)
    return nn.LayerNorm(cfg.n_embd, eps=cfg.norm_eps, bias=cfg.bias)


class RotaryEmbedding(nn.Module):
    """cos/sin tables of RoPE (Su et al. 2021) for positions 0..block_size-1.

    The tables are non-persistent buffers: they are derived from the config, so checkpoints
    do not carry them and `reset_parameters()` recomputes them after a meta-device build.
    """

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


class CausalSelfAttention(nn.Module):
    """Multi-head attention with nkv <= nh key/value heads (MHA, GQA, MQA) through SDPA.

    One fused qkv matmul; heads are a reshape, never a Python loop. With a KV cache the new
    keys are written into it and the queries attend over everything cached so far.
    """

    def __init__(self, cfg: ModelConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.n_head, self.n_kv_head, self.head_dim = cfg.n_head, cfg.kv_heads, cfg.head_dim
        qkv_out = (self.n_head + 2 * self.n_kv_head) * self.head_dim
        self.qkv = nn.Linear(cfg.n_embd, qkv_out, bias=cfg.bias)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = cfg.dropout

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        kv_cache: KVCache | None = None,
    ) -> torch.Tensor:
        B, T, C = x.shape  # (B, T, C)
        nh, nkv, hs = self.n_head, self.n_kv_head, self.head_dim
        q, k, v = self.qkv(x).split([nh * hs, nkv * hs, nkv * hs], dim=-1)  # (B, T, *)
        q = q.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, nkv, hs).transpose(1, 2)  # (B, nkv, T, hs)
        v = v.view(B, T, nkv, hs).transpose(1, 2)  # (B, nkv, T, hs)
        if rope is not None:
            q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)  # positions in the angle
        if kv_cache is not None:
            k, v = kv_cache.update(self.layer_idx, k, v)  # (B, nkv, S, hs)
        y = self._attend(q, k, v)  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C): heads side by side again
        y = self.proj(y)  # (B, T, C)
        if self.training and self.dropout > 0:
            y = F.dropout(y, self.dropout, training=True)  # residual dropout
        return y

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        T, S = q.size(2), k.size(2)
        mask = None
        # SDPA's is_causal aligns the mask top-left, which is only right when T == S. A single
        # decoding query may see every cached key (no mask); a chunk appended to a non-empty
        # cache needs an explicit mask aligned bottom-right.
        is_causal = T == S
        if T > 1 and T != S:
            mask = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(S - T)  # (T, S)
        p = self.dropout if self.training else 0.0
        # GQA/MQA: SDPA shares each kv head across nh/nkv query heads itself (no repeat copy).
        gqa = k.size(1) != q.size(1)
        # torch's CPU flash-attention backward is 1.3-4.5x slower in bf16 than in fp32 at
        # T <= 256 (measured on AVX512-BF16, torch 2.13), so CPU training attends in fp32.
        upcast = q.dtype == torch.bfloat16 and q.device.type == "cpu" and torch.is_grad_enabled()
        dtype = q.dtype
        if upcast:
            q, k, v = q.float(), k.float(), v.float()
        with torch.autocast("cpu", enabled=False) if upcast else contextlib.nullcontext():
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=p, is_causal=is_causal, enable_gqa=gqa
            )  # (B, nh, T, hs)
        return y.to(dtype)  # back to bf16 if upcast (a no-op otherwise)


class MLP(nn.Module):
    """GELU MLP (tanh approximation, GPT-2's `gelu_new`, so HF GPT-2 weights give identical
    logits) or SwiGLU (Shazeer 2020) with gate and up projections fused in one matmul."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.swiglu = cfg.mlp == "swiglu"
        fc_out = 2 * cfg.ffn_dim if self.swiglu else cfg.ffn_dim
        self.fc = nn.Linear(cfg.n_embd, fc_out, bias=cfg.bias)
        self.proj = nn.Linear(cfg.ffn_dim, cfg.n_embd, bias=cfg.bias)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)  # (B, T, F) or (B, T, 2F)
        if self.swiglu:
            gate, up = h.chunk(2, dim=-1)  # (B, T, F) each
            h = F.silu(gate) * up  # (B, T, F)
        else:
            h = F.gelu(h, approximate="tanh")  # (B, T, F)
        y = self.proj(h)  # (B, T, C)
        if self.training and self.dropout > 0:
            y = F.dropout(y, self.dropout, training=True)  # residual dropout
        return y


class Block(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, cfg: ModelConfig, layer_idx: int) -> None:
        super().__init__()
        self.ln_1 = make_norm(cfg)
        self.attn = CausalSelfAttention(cfg, layer_idx)
        self.ln_2 = make_norm(cfg)
        self.mlp = MLP(cfg)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        kv_cache: KVCache | None = None,
    ) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), rope, kv_cache)  # (B, T, C)
        x = x + self.mlp(self.ln_2(x))  # (B, T, C)
        return x
