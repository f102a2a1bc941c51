"""Building blocks shared by every family: norms, attention (self and cross), MLP, Block.

Shapes: B batch, T tokens in this call, S keys attended (T, cache length, or encoder length),
C = n_embd, nh query heads, nkv key/value heads, hs head size, F = ffn_dim. Every layer takes
its options from `ModelConfig`, so one Block class covers GPT-2, LLaMA, BERT and T5 styles.
Attention options arrive as an `AttnBias`-free fast path (the plain causal decoder calls SDPA
with `is_causal`) or as one additive float bias (nh or B·nh, T, S) built once per forward.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from llmtrain.models.config import ModelConfig
from llmtrain.models.kv_cache import KVCache
from llmtrain.models.positions import RotaryEmbedding, apply_rotary  # noqa: F401 (re-export)


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype matmuls on `x` run in: autocast's on its device when enabled, else x's."""
    dev = x.device.type
    return torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else x.dtype


def make_norm(cfg: ModelConfig, dim: int | None = None) -> nn.Module:
    """LayerNorm (bias follows `cfg.bias`) or RMSNorm, both fused kernels from torch."""
    dim = cfg.n_embd if dim is None else dim
    if cfg.norm == "rmsnorm":
        return nn.RMSNorm(dim, eps=cfg.norm_eps)
    return nn.LayerNorm(dim, eps=cfg.norm_eps, bias=cfg.bias)


def _sdpa(q, k, v, mask, dropout_p: float, is_causal: bool, scale: float | None) -> torch.Tensor:
    gqa = k.size(1) != q.size(1)  # GQA/MQA: SDPA shares each kv head itself (no repeat copy)
    # torch's CPU flash-attention backward is 1.3-4.5x slower in bf16 than in fp32 at
    # T <= 256 (measured on AVX512-BF16, torch 2.13), so CPU training attends in fp32.
    upcast = q.dtype == torch.bfloat16 and q.device.type == "cpu" and torch.is_grad_enabled()
    dtype = q.dtype
    if upcast:
        q, k, v = q.float(), k.float(), v.float()
        mask = mask.float() if mask is not None and mask.is_floating_point() else mask
    with torch.autocast("cpu", enabled=False) if upcast else contextlib.nullcontext():
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=dropout_p,
            is_causal=is_causal,
            enable_gqa=gqa,
            scale=scale,
        )  # (B, nh, T, hs)
    return y.to(dtype)  # back to bf16 if upcast (a no-op otherwise)


class SelfAttention(nn.Module):
    """Multi-head attention with nkv <= nh key/value heads (MHA, GQA, MQA) through SDPA.

    One fused qkv matmul; heads are a reshape, never a Python loop. With a KV cache the new
    keys are written into it and the queries attend over everything cached so far.
    """

    def __init__(self, cfg: ModelConfig, layer_idx: int, causal: bool = True) -> None:
        super().__init__()
        self.layer_idx, self.causal = layer_idx, causal
        self.n_head, self.n_kv_head, self.head_dim = cfg.n_head, cfg.kv_heads, cfg.head_dim
        qkv_out = (self.n_head + 2 * self.n_kv_head) * self.head_dim
        self.qkv = nn.Linear(cfg.n_embd, qkv_out, bias=cfg.bias)
        self.proj = nn.Linear(self.n_head * self.head_dim, cfg.n_embd, bias=cfg.bias)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=cfg.norm_eps) if cfg.qk_norm else None
        self.k_norm = nn.RMSNorm(self.head_dim, eps=cfg.norm_eps) if cfg.qk_norm else None
        self.attn_dropout, self.dropout = cfg.drop("attn"), cfg.drop("resid")
        self.scale = cfg.attn_scale

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        kv_cache: KVCache | None = None,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        B, T, _ = x.shape  # (B, T, C)
        nh, nkv, hs = self.n_head, self.n_kv_head, self.head_dim
        q, k, v = self.qkv(x).split([nh * hs, nkv * hs, nkv * hs], dim=-1)  # (B, T, *)
        q = q.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, nkv, hs).transpose(1, 2)  # (B, nkv, T, hs)
        v = v.view(B, T, nkv, hs).transpose(1, 2)  # (B, nkv, T, hs)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)  # per head, before the rotation
        if rope is not None:
            q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)  # positions in the angle
        if kv_cache is not None:
            k, v = kv_cache.update(self.layer_idx, k, v)  # (B, nkv, S, hs)
        y = self._attend(q, k, v, bias)  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, nh * hs)  # (B, T, nh*hs): heads side by side
        y = self.proj(y)  # (B, T, C)
        if self.training and self.dropout > 0:
            y = F.dropout(y, self.dropout, training=True)  # residual dropout
        return y

    def _attend(self, q, k, v, bias: torch.Tensor | None) -> torch.Tensor:
        T, S = q.size(2), k.size(2)
        p = self.attn_dropout if self.training else 0.0
        if bias is not None:  # positions/prefix/padding folded into one additive bias
            return _sdpa(q, k, v, bias.to(q.dtype), p, False, self.scale)
        if not self.causal:
            return _sdpa(q, k, v, None, p, False, self.scale)
        mask = None
        # SDPA's is_causal aligns the mask top-left, which is only right when T == S. A single
        # decoding query may see every cached key (no mask); a chunk appended to a non-empty
        # cache needs an explicit mask aligned bottom-right.
        is_causal = T == S
        if T > 1 and T != S:
            mask = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(S - T)  # (T, S)
        return _sdpa(q, k, v, mask, p, is_causal, self.scale)


CausalSelfAttention = SelfAttention  # the name the decoder-only code used


class CrossAttention(nn.Module):
    """Queries from the decoder stream, keys/values from the encoder output (T5)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_head, self.head_dim = cfg.n_head, cfg.head_dim
        inner = self.n_head * self.head_dim
        self.q = nn.Linear(cfg.n_embd, inner, bias=cfg.bias)
        self.kv = nn.Linear(cfg.n_embd, 2 * inner, bias=cfg.bias)
        self.proj = nn.Linear(inner, cfg.n_embd, bias=cfg.bias)
        self.attn_dropout, self.dropout = cfg.drop("attn"), cfg.drop("resid")
        self.scale = cfg.attn_scale

    def forward(self, x: torch.Tensor, memory: torch.Tensor, bias: torch.Tensor | None):
        B, T, _ = x.shape  # (B, T, C)
        S, nh, hs = memory.size(1), self.n_head, self.head_dim
        q = self.q(x).view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k, v = self.kv(memory).view(B, S, 2, nh, hs).permute(2, 0, 3, 1, 4)  # (B, nh, S, hs) x2
        p = self.attn_dropout if self.training else 0.0
        mask = None if bias is None else bias.to(q.dtype)
        y = _sdpa(q, k, v, mask, p, False, self.scale).transpose(1, 2).reshape(B, T, nh * hs)
        y = self.proj(y)  # (B, T, C)
        if self.training and self.dropout > 0:
            y = F.dropout(y, self.dropout, training=True)
        return y


def activation(name: str, h: torch.Tensor) -> torch.Tensor:
    """The non-gated activations by config name."""
    if name == "gelu":
        return F.gelu(h)
    if name == "gelu_tanh":
        return F.gelu(h, approximate="tanh")
    if name == "relu":
        return F.relu(h)
    if name == "relu2":
        return F.relu(h).square()
    raise AssertionError(name)


# gated MLP -> activation of its gate
GATE_ACT = {"swiglu": "silu", "geglu": "gelu", "geglu_tanh": "gelu_tanh"}


class MLP(nn.Module):
    """Two-matrix MLP (ReLU, ReLU², GELU exact or tanh) or gated MLP (SwiGLU, GeGLU; Shazeer
    2020) with the gate and up projections fused in one matmul (gate rows first)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.kind = cfg.mlp
        self.gate_act = GATE_ACT.get(cfg.mlp)
        fc_out = 2 * cfg.ffn_dim if self.gate_act else cfg.ffn_dim
        self.fc = nn.Linear(cfg.n_embd, fc_out, bias=cfg.bias)
        self.proj = nn.Linear(cfg.ffn_dim, cfg.n_embd, bias=cfg.bias)
        self.dropout = cfg.drop("resid")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)  # (B, T, F) or (B, T, 2F)
        if self.gate_act == "silu":
            gate, up = h.chunk(2, dim=-1)  # (B, T, F) each
            h = F.silu(gate) * up  # (B, T, F)
        elif self.gate_act is not None:
            gate, up = h.chunk(2, dim=-1)
            h = activation(self.gate_act, gate) * up
        else:
            h = activation(self.kind, h)  # (B, T, F)
        y = self.proj(h)  # (B, T, C)
        if self.training and self.dropout > 0:
            y = F.dropout(y, self.dropout, training=True)  # residual dropout
        return y


def make_mlp(cfg: ModelConfig) -> nn.Module:
    """The dense MLP, or a Mixture-of-Experts drop-in when `cfg.n_experts > 0`."""
    if cfg.n_experts > 0:
        from llmtrain.models.moe import MoE  # moe imports this module for `activation`

        return MoE(cfg)
    return MLP(cfg)


class Block(nn.Module):
    """Residual block. Pre-norm: x + attn(norm(x)), x + mlp(norm(x)). Post-norm (BERT):
    norm(x + attn(x)), norm(x + mlp(x)). With `cross=True` a cross-attention sub-layer
    (T5 decoder) sits between the two."""

    def __init__(
        self, cfg: ModelConfig, layer_idx: int, causal: bool = True, cross: bool = False
    ) -> None:
        super().__init__()
        self.post = cfg.norm_position == "post"
        self.ln_1 = make_norm(cfg)
        self.attn = SelfAttention(cfg, layer_idx, causal)
        self.ln_x = make_norm(cfg) if cross else None
        self.xattn = CrossAttention(cfg) if cross else None
        self.ln_2 = make_norm(cfg)
        self.mlp = make_mlp(cfg)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        kv_cache: KVCache | None = None,
        bias: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        memory_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.post:
            x = self.ln_1(x + self.attn(x, rope, kv_cache, bias))  # (B, T, C)
            if self.xattn is not None:
                x = self.ln_x(x + self.xattn(x, memory, memory_bias))
            return self.ln_2(x + self.mlp(x))
        x = x + self.attn(self.ln_1(x), rope, kv_cache, bias)  # (B, T, C)
        if self.xattn is not None:
            x = x + self.xattn(self.ln_x(x), memory, memory_bias)  # (B, T, C)
        x = x + self.mlp(self.ln_2(x))  # (B, T, C)
        return x
