"""`ModelConfig`: the typed description of every model family (decoder, encoder, encoder-decoder).

Every option is orthogonal and validated here (architecture, positions, norm and its place,
activation, KV heads, QK-norm, tying, heads, dropouts, init, MoE); presets in `presets.py`
are plain dicts of these fields. `validate()` names the key, the value and a valid choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from llmtrain.config.core import ConfigSection
from llmtrain.errors import ConfigError
from llmtrain.models.hf import TargetName

GATED_MLPS = ("swiglu", "geglu", "geglu_tanh")


@dataclass
class ModelConfig(ConfigSection):
    _prefix = "model"

    # decoder: causal LM (GPT-2, Llama, Mixtral); encoder: bidirectional (BERT, RoBERTa,
    # ELECTRA); encoder_decoder: T5 (the decoder cross-attends to the encoder's output).
    architecture: Literal["decoder", "encoder", "encoder_decoder"] = "decoder"
    vocab_size: int = 0  # 0 = take it from the prepared data's tokenizer (+ objective ids)
    block_size: int = 256  # maximum sequence length (context window)
    n_layer: int = 4  # decoder depth, or encoder depth of an encoder_decoder
    n_decoder_layer: int | None = None  # encoder_decoder only: None = n_layer
    n_head: int = 4  # attention heads (query heads under GQA/MQA)
    n_kv_head: int | None = None  # None = n_head (MHA); 1 = MQA; between = GQA
    n_embd: int = 256  # model width (hidden size)
    # Factorised embeddings (ALBERT, ELECTRA): token/position/segment tables of this width,
    # projected to n_embd; the head transform maps back to it. None = n_embd.
    embedding_size: int | None = None
    head_dim_override: int | None = None  # None = n_embd / n_head (T5 may differ)
    intermediate_size: int | None = None  # None = 4*n_embd, or ~8/3*n_embd when gated
    # learned (GPT-2, BERT), sinusoidal (Vaswani et al.), rope (Su et al.), alibi (Press et
    # al., a per-head linear distance bias), relative (T5's bucketed learned bias).
    pos_embedding: Literal["learned", "sinusoidal", "rope", "alibi", "relative"] = "learned"
    rope_theta: float = 10000.0  # RoPE base (Llama 3: 500000)
    rel_buckets: int = 32  # T5 relative attention: buckets and the distance they saturate at
    rel_max_distance: int = 128  # T5 relative attention: distance the buckets saturate at
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"  # layernorm (GPT-2, BERT) | rmsnorm
    norm_eps: float = 1e-5  # epsilon of every norm (BERT 1e-12, T5 1e-6)
    norm_position: Literal["pre", "post"] = "pre"  # post = original Transformer / BERT
    embedding_norm: bool = False  # a norm right after the embeddings (BERT)
    qk_norm: bool = False  # RMSNorm of each head's queries and keys (OLMo-2, Qwen3)
    attn_scale: float | None = None  # None = 1/sqrt(head_dim); T5 uses 1.0
    # gelu: exact erf GELU (4x cheaper than tanh on CPU); gelu_tanh: GPT-2's `gelu_new`;
    # relu2: squared ReLU (So et al. 2021); swiglu/geglu: gated (Shazeer 2020).
    mlp: Literal["relu", "relu2", "gelu", "gelu_tanh", "swiglu", "geglu", "geglu_tanh"] = "gelu"
    bias: bool = True  # biases in linear layers and norms (Llama, T5: false)
    tie_embeddings: bool = True  # the LM head shares the token embedding matrix
    type_vocab_size: int = 0  # segment embeddings (BERT: 2); 0 = none
    # BERT/ELECTRA-style LM head: dense + activation + norm before the projection, plus a bias.
    head_transform: bool = False
    head_bias: bool = False  # a bias on the LM head projection (BERT)
    sentence_head: bool = False  # pooler + 2-way classifier on position 0 (SOP / NSP)
    # ELECTRA (Clark et al. 2020): > 0 adds a generator of this fraction of the width (heads
    # and FFN scale with it, depth kept) that shares the embeddings; the model becomes
    # `Electra` and the encoder is the replaced-token discriminator. Paper: 1/4 to 1/3.
    generator_scale: float = 0.0
    dropout: float = 0.0  # default of the three below
    embd_dropout: float | None = None  # after the embeddings; None = dropout
    attn_dropout: float | None = None  # on the attention weights; None = dropout
    resid_dropout: float | None = None  # on each residual branch; None = dropout
    init_std: float = 0.02  # std of the normal weight init (see init_scheme)
    init_scheme: Literal["normal", "gpt2", "small", "t5"] = "gpt2"  # see llmtrain.models.init
    # A local Hugging Face directory (config.json + safetensors) whose weights initialise the
    # model after it is built (`train --init-from`); never reloaded when a run resumes.
    init_from: str | None = None
    # The Hugging Face class `llmtrain export` writes; None = inferred from the options (a
    # plain encoder is BERT). "roberta" (the same encoder as RobertaForMaskedLM, whose
    # positions start at PAD + 1) must be named here or by `export --target`; --init-from
    # of a RoBERTa directory sets it.
    hf_target: TargetName | None = None  # the names of `llmtrain.models.hf.TARGETS`
    # Mixture of experts (0 = dense MLP). capacity_factor 0 = dropless.
    n_experts: int = 0
    moe_top_k: int = 2  # experts each token is routed to
    moe_capacity_factor: float = 0.0  # tokens per expert / fair share; 0 = dropless
    moe_renormalize: bool = True  # renormalise the top-k gates to sum to 1 (Mixtral)
    moe_balance_coef: float = 0.01  # Switch load-balancing loss (Fedus et al. 2021, eq. 4)
    moe_z_coef: float = 0.001  # router z-loss (Zoph et al. 2022, ST-MoE eq. 5)
    moe_importance_coef: float = 0.0  # CV^2 of gate mass per expert (Shazeer et al. 2017)
    moe_load_coef: float = 0.0  # CV^2 of the soft token load per expert (Shazeer et al. 2017)

    def validate(self) -> None:
        for name in ("n_layer", "n_head", "n_embd", "block_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"model.{name} must be positive, got {getattr(self, name)}")
        if self.vocab_size < 0:
            raise ConfigError(f"model.vocab_size must be >= 0, got {self.vocab_size}")
        if self.head_dim_override is None and self.n_embd % self.n_head != 0:
            raise ConfigError(
                f"model.n_embd ({self.n_embd}) must be divisible by model.n_head ({self.n_head}); "
                f"e.g. set model.n_embd={self.n_head * max(1, round(self.n_embd / self.n_head))}"
            )
        kv = self.kv_heads
        if kv <= 0 or self.n_head % kv != 0:
            raise ConfigError(
                f"model.n_kv_head ({self.n_kv_head}) must divide model.n_head ({self.n_head})"
            )
        if self.pos_embedding == "rope" and self.head_dim % 2 != 0:
            raise ConfigError(
                f"RoPE needs an even head size; n_embd/n_head = {self.head_dim}. "
                "Change model.n_embd or model.n_head."
            )
        if self.pos_embedding == "sinusoidal" and self.n_embd % 2 != 0:
            raise ConfigError(f"sinusoidal positions need an even model.n_embd, got {self.n_embd}")
        for name in ("dropout", "embd_dropout", "attn_dropout", "resid_dropout"):
            p = getattr(self, name)
            if p is not None and not 0.0 <= p < 1.0:
                raise ConfigError(f"model.{name} must be in [0, 1), got {p}")
        if self.n_decoder_layer is not None and self.architecture != "encoder_decoder":
            raise ConfigError(
                "model.n_decoder_layer only applies to model.architecture='encoder_decoder'"
            )
        if self.sentence_head and self.architecture != "encoder":
            raise ConfigError(
                "model.sentence_head (SOP/NSP) needs model.architecture='encoder': "
                "it classifies position 0, which only a bidirectional model sees whole"
            )
        self._validate_electra()
        self._validate_moe()

    def _validate_electra(self) -> None:
        if self.embedding_size is not None:
            if self.embedding_size <= 0:
                raise ConfigError(
                    f"model.embedding_size must be positive, got {self.embedding_size}"
                )
            if self.pos_embedding == "sinusoidal" or self.architecture == "encoder_decoder":
                raise ConfigError(
                    "model.embedding_size (factorised embeddings) needs a decoder or encoder "
                    "with learned/rope/alibi positions"
                )
        if not 0.0 <= self.generator_scale <= 1.0:
            raise ConfigError(
                f"model.generator_scale must be in [0, 1], got {self.generator_scale}"
            )
        if self.generator_scale:
            bad = [k for k in ("head_transform", "head_bias", "sentence_head") if getattr(self, k)]
            if self.architecture != "encoder":
                bad.append("architecture (needs 'encoder')")
            if bad:
                raise ConfigError(
                    "model.generator_scale > 0 (ELECTRA) needs an encoder whose own LM head is "
                    f"unused; unset: {', '.join(bad)}"
                )

    def _validate_moe(self) -> None:
        if self.n_experts < 0:
            raise ConfigError(f"model.n_experts must be >= 0, got {self.n_experts}")
        if self.n_experts and not 1 <= self.moe_top_k <= self.n_experts:
            raise ConfigError(
                f"model.moe_top_k ({self.moe_top_k}) must be in [1, n_experts={self.n_experts}]"
            )
        if self.moe_capacity_factor < 0:
            raise ConfigError(
                f"model.moe_capacity_factor must be >= 0 (0 = dropless), "
                f"got {self.moe_capacity_factor}"
            )

    @property
    def causal(self) -> bool:
        """Whether the (main) stack masks future positions."""
        return self.architecture == "decoder"

    @property
    def decoder_layers(self) -> int:
        return self.n_layer if self.n_decoder_layer is None else self.n_decoder_layer

    @property
    def kv_heads(self) -> int:
        return self.n_head if self.n_kv_head is None else self.n_kv_head

    @property
    def head_dim(self) -> int:
        return self.head_dim_override or self.n_embd // self.n_head

    @property
    def emb_dim(self) -> int:
        """Width of the embedding tables (n_embd unless factorised)."""
        return self.embedding_size or self.n_embd

    @property
    def gated(self) -> bool:
        return self.mlp in GATED_MLPS

    def drop(self, kind: str) -> float:
        """Dropout probability of `kind` ('embd', 'attn' or 'resid'); falls back to `dropout`."""
        p = getattr(self, f"{kind}_dropout")
        return self.dropout if p is None else p

    @property
    def ffn_dim(self) -> int:
        if self.intermediate_size is not None:
            return self.intermediate_size
        if self.gated:
            # LLaMA: 2/3 of 4d, rounded up to a multiple of 64 for efficient matmuls.
            hidden = int(8 * self.n_embd / 3)
            return 64 * ((hidden + 63) // 64)
        return 4 * self.n_embd
