"""Weight mapping between our GPT-2-style `Transformer` and Hugging Face `GPT2LMHeadModel`.

A table of (our key, HF key, transpose) rows: HF GPT-2 stores its linears as `Conv1D` with
(in, out) weights, ours are `nn.Linear` (out, in), so every matrix inside a block is
transposed. Used by the logit-parity test now and the export module later.
"""

from __future__ import annotations

import torch
from torch import nn

from llmtrain.errors import ExportError

# Per-block rows: our suffix after "blocks.{i}.", HF suffix after "transformer.h.{i}.", transpose.
_BLOCK_TABLE = (
    ("ln_1.weight", "ln_1.weight", False),
    ("ln_1.bias", "ln_1.bias", False),
    ("attn.qkv.weight", "attn.c_attn.weight", True),
    ("attn.qkv.bias", "attn.c_attn.bias", False),
    ("attn.proj.weight", "attn.c_proj.weight", True),
    ("attn.proj.bias", "attn.c_proj.bias", False),
    ("ln_2.weight", "ln_2.weight", False),
    ("ln_2.bias", "ln_2.bias", False),
    ("mlp.fc.weight", "mlp.c_fc.weight", True),
    ("mlp.fc.bias", "mlp.c_fc.bias", False),
    ("mlp.proj.weight", "mlp.c_proj.weight", True),
    ("mlp.proj.bias", "mlp.c_proj.bias", False),
)
_TOP_TABLE = (
    ("wte.weight", "transformer.wte.weight", False),
    ("wpe.weight", "transformer.wpe.weight", False),
    ("ln_f.weight", "transformer.ln_f.weight", False),
    ("ln_f.bias", "transformer.ln_f.bias", False),
)


# our MLP option -> GPT2Config.activation_function
HF_ACTIVATION = {"gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu", "relu2": "relu2"}


def _check_gpt2_compatible(model: nn.Module) -> None:
    cfg = model.cfg
    wanted = {
        "pos_embedding": "learned",
        "norm": "layernorm",
        "bias": True,
        "kv_heads": cfg.n_head,
    }
    bad = [
        f"{k}={getattr(cfg, k)!r} (GPT-2 needs {v!r})"
        for k, v in wanted.items()
        if getattr(cfg, k) != v
    ]
    if cfg.mlp not in HF_ACTIVATION:
        bad.append(f"mlp={cfg.mlp!r} (GPT-2 needs one of {', '.join(HF_ACTIVATION)})")
    if cfg.intermediate_size not in (None, 4 * cfg.n_embd):
        bad.append(f"intermediate_size={cfg.intermediate_size} (GPT-2 needs 4*n_embd)")
    if bad:
        raise ExportError("model cannot be written as HF GPT-2: " + "; ".join(bad))


def to_hf_gpt2_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """HF `GPT2LMHeadModel` state dict (contiguous copies) of a GPT-2-style `Transformer`."""
    _check_gpt2_compatible(model)
    ours = model.state_dict()
    rows = list(_TOP_TABLE)
    for i in range(model.cfg.n_layer):
        rows += [(f"blocks.{i}.{a}", f"transformer.h.{i}.{b}", t) for a, b, t in _BLOCK_TABLE]
    out = {}
    for our_key, hf_key, transpose in rows:
        t = ours[our_key].detach()
        out[hf_key] = (t.t() if transpose else t).contiguous().clone()
    # HF always has lm_head.weight; it is the same tensor as wte when tied.
    out["lm_head.weight"] = (
        out["transformer.wte.weight"] if model.lm_head is None else ours["lm_head.weight"].clone()
    )
    return out
