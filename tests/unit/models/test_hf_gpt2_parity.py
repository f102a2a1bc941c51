"""Our GPT-2-style model and HF `GPT2LMHeadModel` with the same weights give the same logits."""

from __future__ import annotations

import pytest
import torch

from llmtrain.config.core import config_from_dict
from llmtrain.errors import ExportError
from llmtrain.models import ModelConfig, build_model
from llmtrain.models.hf_gpt2 import HF_ACTIVATION, to_hf_gpt2_state_dict

transformers = pytest.importorskip("transformers")


def hf_model_for(cfg: ModelConfig):
    hf_cfg = transformers.GPT2Config(
        vocab_size=cfg.vocab_size,
        n_positions=cfg.block_size,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        activation_function=HF_ACTIVATION[cfg.mlp],
        layer_norm_epsilon=cfg.norm_eps,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=cfg.tie_embeddings,
    )
    return transformers.GPT2LMHeadModel(hf_cfg).eval()


@pytest.mark.parametrize("tie, mlp", [(True, "gelu"), (False, "gelu"), (True, "gelu_tanh")])
def test_logits_match_hf_gpt2(tie, mlp):
    torch.manual_seed(0)
    cfg = config_from_dict(
        ModelConfig,
        {
            "vocab_size": 300,
            "block_size": 32,
            "n_layer": 2,
            "n_head": 2,
            "n_embd": 64,
            "tie_embeddings": tie,
            "mlp": mlp,
        },
    )
    ours = build_model(cfg).eval()
    with torch.no_grad():  # non-trivial norms and biases, so a mis-mapped one shows up
        for name, p in ours.named_parameters():
            if name.endswith("bias") or "ln" in name:
                p.normal_(0.0 if name.endswith("bias") else 1.0, 0.1)
    hf = hf_model_for(cfg)
    missing, unexpected = hf.load_state_dict(to_hf_gpt2_state_dict(ours), strict=False)
    assert not unexpected
    assert all(k.endswith(".attn.bias") or k.endswith(".attn.masked_bias") for k in missing)
    idx = torch.randint(0, cfg.vocab_size, (2, 32))
    with torch.no_grad():
        diff = (ours(idx) - hf(idx).logits).abs().max().item()
    assert diff < 1e-5


def test_llama_style_model_cannot_be_written_as_gpt2():
    cfg = ModelConfig(
        vocab_size=50, n_layer=1, n_head=2, n_embd=16, pos_embedding="rope", norm="rmsnorm"
    )
    with pytest.raises(ExportError, match="pos_embedding"):
        to_hf_gpt2_state_dict(build_model(cfg))
