"""FLOPs per token of the decoder, from the config alone (used for MFU and compute budgets).

Training (forward + backward), per token at sequence length T:

    flops_per_token = 6 * N  +  12 * n_layer * n_embd * T

N counts the weights of every matmul (attention qkv and output, MLP, LM head and BERT's head
transform, a factorised embedding's projection; not embedding lookups, norms or biases). Each
weight costs 2 FLOPs (multiply + add) per token forward and twice that backward: 6N (Kaplan et al. 2020, eq. 2.1). Attention scores QK^T and the weighted
sum AV are 2 * T * n_embd multiply-adds per layer forward, i.e. 4 * T * n_embd FLOPs, times 3
for forward + backward: 12 * n_layer * n_embd * T (PaLM appendix B; nanoGPT `estimate_mfu`).
The causal mask halves the useful attention work, but by convention it is counted in full.
Inference (forward only) is a third of that: 2 * N + 4 * n_layer * n_embd * T.
"""

from __future__ import annotations

from llmtrain.models.config import ModelConfig


def _body_params(cfg: ModelConfig) -> int:
    """The blocks' matmul weights (+ a factorised embedding's projection to n_embd)."""
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
    return layers + (cfg.emb_dim * c if cfg.emb_dim != c else 0)


def head_params(cfg: ModelConfig) -> int:
    """The LM head's matmul weights at one predicted position: vocab × its input width, plus
    BERT's head transform (n_embd × emb_dim) where the model has one."""
    if cfg.head_transform:
        return cfg.vocab_size * cfg.emb_dim + cfg.n_embd * cfg.emb_dim
    return cfg.vocab_size * cfg.n_embd


def _generator(cfg: ModelConfig) -> ModelConfig | None:
    """ELECTRA's generator config (`model.generator_scale` > 0), else None."""
    if not cfg.generator_scale:
        return None
    from llmtrain.models.electra import generator_config

    return generator_config(cfg)


def matmul_params(cfg: ModelConfig) -> int:
    """Weights that take part in a matmul per token (the N of 6N). For MoE, the *active*
    weights: the router plus top_k experts' MLPs. An encoder-decoder counts both stacks and
    the decoder's cross-attention (each token once per stack, a simplification). ELECTRA:
    the discriminator with its replaced-token head (no LM head) + the generator with its LM
    head."""
    gen = _generator(cfg)
    if gen is not None:
        rtd = cfg.n_embd * cfg.n_embd + cfg.n_embd  # dense + the 1-logit output
        return _body_params(cfg) + rtd + _body_params(gen) + head_params(gen)
    return _body_params(cfg) + head_params(cfg)


def _attention_flops(cfg: ModelConfig, seq_len: int | None) -> int:
    t = cfg.block_size if seq_len is None else seq_len
    gen = _generator(cfg)
    width = cfg.n_embd + (0 if gen is None else gen.n_embd)  # ELECTRA: both networks
    return 4 * cfg.n_layer * width * t  # QK^T and AV, forward, per token


def flops_per_token(cfg: ModelConfig, seq_len: int | None = None) -> float:
    """Training FLOPs (forward + backward) per token; `seq_len` defaults to block_size."""
    return float(6 * matmul_params(cfg) + 3 * _attention_flops(cfg, seq_len))


def head_flops_per_token(cfg: ModelConfig) -> float:
    """The LM head's share of `flops_per_token` (6 · `head_params`; ELECTRA: the generator's
    head): what each position the head skips saves (sparse prediction: an objective's head
    runs at its targets only)."""
    gen = _generator(cfg)
    return float(6 * head_params(cfg if gen is None else gen))


def forward_flops_per_token(cfg: ModelConfig, seq_len: int | None = None) -> float:
    """Inference FLOPs (forward only) per token at context length `seq_len`."""
    return float(2 * matmul_params(cfg) + _attention_flops(cfg, seq_len))
