"""FLOPs per token of the decoder, from the config alone (used for MFU and compute budgets).

Training (forward + backward), per token at sequence length T:

    flops_per_token = 6 * N  +  12 * n_layer * n_embd * T

N counts the weights of every matmul (attention qkv and output, MLP, LM head; not embedding
lookups, norms or biases). Each weight costs 2 FLOPs (multiply + add) per token forward and
twice that backward: 6N (Kaplan et al. 2020, eq. 2.1). Attention scores QK^T and the weighted
sum AV are 2 * T * n_embd multiply-adds per layer forward, i.e. 4 * T * n_embd FLOPs, times 3
for forward + backward: 12 * n_layer * n_embd * T (PaLM appendix B; nanoGPT `estimate_mfu`).
The causal mask halves the useful attention work, but by convention it is counted in full.
Inference (forward only) is a third of that: 2 * N + 4 * n_layer * n_embd * T.
"""

from __future__ import annotations

from llmtrain.models.config import ModelConfig


def matmul_params(cfg: ModelConfig) -> int:
    """Weights that take part in a matmul per token (the N of 6N). For MoE, the *active*
    weights: the router plus top_k experts' MLPs. An encoder-decoder counts both stacks and
    the decoder's cross-attention (each token once per stack, a simplification)."""
    c, hs = cfg.n_embd, cfg.head_dim
    inner = cfg.n_head * hs
    attn = c * (cfg.n_head + 2 * cfg.kv_heads) * hs + inner * c  # fused qkv + output proj
    mlp_mats = 3 if cfg.gated else 2  # gated MLPs have gate, up and down matrices
    mlp = mlp_mats * c * cfg.ffn_dim
    if cfg.n_experts:
        mlp = cfg.moe_top_k * mlp + c * cfg.n_experts
    layers = cfg.n_layer * (attn + mlp)
    if cfg.architecture == "encoder_decoder":
        layers += cfg.decoder_layers * (2 * attn + mlp)  # self + cross attention
    return layers + cfg.vocab_size * c  # + LM head


def _attention_flops(cfg: ModelConfig, seq_len: int | None) -> int:
    t = cfg.block_size if seq_len is None else seq_len
    return 4 * cfg.n_layer * cfg.n_embd * t  # QK^T and AV, forward, per token


def flops_per_token(cfg: ModelConfig, seq_len: int | None = None) -> float:
    """Training FLOPs (forward + backward) per token; `seq_len` defaults to block_size."""
    return float(6 * matmul_params(cfg) + 3 * _attention_flops(cfg, seq_len))


def head_flops_per_token(cfg: ModelConfig) -> float:
    """The LM head's share of `flops_per_token` (its 6 · vocab · n_embd): what a position the
    head skips saves (sparse prediction: an objective's head runs at its targets only)."""
    return float(6 * cfg.vocab_size * cfg.n_embd)


def forward_flops_per_token(cfg: ModelConfig, seq_len: int | None = None) -> float:
    """Inference FLOPs (forward only) per token at context length `seq_len`."""
    return float(2 * matmul_params(cfg) + _attention_flops(cfg, seq_len))
