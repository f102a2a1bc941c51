"""Export to Hugging Face: for each target a tiny random model is written, reloaded by
`transformers` and gives the same logits (max abs diff <= 1e-4, fp32); the mapping tables
also import back exactly; options no HF class represents are refused with the reason; the
BPE tokenizer gives identical ids through AutoTokenizer on English and Chinese text."""

from __future__ import annotations

import pytest
import torch

from llmtrain.config.core import config_from_dict
from llmtrain.errors import ExportError
from llmtrain.export import export_hf
from llmtrain.export.tables import llama_from_hf, llama_to_hf
from llmtrain.models import ModelConfig, build_model

transformers = pytest.importorskip("transformers")

LLAMA = {"pos_embedding": "rope", "norm": "rmsnorm", "mlp": "swiglu", "bias": False}
BERT = {
    **{"architecture": "encoder", "norm_position": "post", "embedding_norm": True},
    **{"head_transform": True, "head_bias": True, "norm_eps": 1e-12, "type_vocab_size": 2},
}
ELECTRA = {
    **{"architecture": "encoder", "norm_position": "post", "embedding_norm": True},
    **{"norm_eps": 1e-12, "type_vocab_size": 2},
}
T5 = {
    **{"architecture": "encoder_decoder", "pos_embedding": "relative", "norm": "rmsnorm"},
    **{"bias": False, "attn_scale": 1.0, "norm_eps": 1e-6, "rel_buckets": 8},
    **{"rel_max_distance": 16},
}
CASES = {
    "gpt2": {"mlp": "gelu_tanh", "tie_embeddings": False},
    "gpt2_relu": {"mlp": "relu"},
    "llama_gqa": {**LLAMA, "n_kv_head": 2, "tie_embeddings": False},
    "llama_tied_mqa": {**LLAMA, "n_kv_head": 1},
    "mixtral": {**LLAMA, "n_experts": 4, "moe_top_k": 2, "tie_embeddings": False, "n_kv_head": 2},
    "bert_mlm": {**BERT, "type_vocab_size": 0},
    "bert_pretraining": {**BERT, "type_vocab_size": 2, "sentence_head": True},
    "electra_factorised": {**ELECTRA, "embedding_size": 32, "generator_scale": 0.25},
    "electra_square": {**ELECTRA, "generator_scale": 0.5},
    "t5_v1_1": {**T5, "mlp": "geglu_tanh", "tie_embeddings": False, "head_dim_override": 8},
    "t5_tied_relu": {**T5, "mlp": "relu", "n_decoder_layer": 1},
}


def tiny(**kw) -> ModelConfig:
    base = {"vocab_size": 300, "block_size": 32, "n_layer": 2, "n_head": 4, "n_embd": 64}
    return config_from_dict(ModelConfig, {**base, **kw})


def randomised(cfg: ModelConfig):
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    with torch.no_grad():  # non-trivial norms and biases, so a mis-mapped one shows up
        for name, p in model.named_parameters():
            if name.endswith("bias") or "ln" in name or "norm" in name:
                p.normal_(0.0 if name.endswith("bias") else 1.0, 0.1)
            elif "rel" in name:  # T5 relative position biases
                p.normal_(0.0, 1.0)
    return model


@pytest.mark.parametrize("case", list(CASES))
def test_export_reloads_with_identical_logits(case, tmp_path):
    model = randomised(tiny(**CASES[case]))
    res = export_hf(model, tmp_path / case)
    assert res["max_abs_diff"] <= 1e-4
    assert {"config.json", "model.safetensors"} <= set(res["files"])
    generative = not case.startswith(("bert", "electra"))
    assert ("generation_config.json" in res["files"]) == generative


def test_llama_table_round_trips():
    model = randomised(tiny(**CASES["llama_gqa"]))
    back = llama_from_hf(llama_to_hf(model, moe=False), model.cfg, moe=False)
    ours = model.state_dict()
    assert back.keys() == ours.keys()
    assert all(torch.equal(back[k], ours[k]) for k in ours)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({**LLAMA, "pos_embedding": "alibi"}, "pos_embedding"),
        ({**LLAMA, "qk_norm": True}, "qk_norm"),
        ({"norm_position": "post"}, "norm_position"),
        ({"architecture": "encoder"}, "BERT needs"),
        ({"architecture": "encoder_decoder", "pos_embedding": "learned"}, "T5 needs"),
    ],
)
def test_unrepresentable_models_are_refused(kw, match, tmp_path):
    with pytest.raises(ExportError, match=match):
        export_hf(
            build_model(tiny(**kw)), tmp_path / "x", target="llama" if "rope" in str(kw) else None
        )


def test_bpe_tokenizer_ids_are_identical(tmp_path):
    from llmtrain.tokenizer import train_tokenizer

    texts = [
        "The quick brown fox jumps over the lazy dog. " * 20,
        "语言模型从大量文本中学习。" * 20,
    ]
    tok = train_tokenizer("bpe", texts, vocab_size=300)
    model = randomised(tiny(vocab_size=tok.vocab_size + 1))  # + an MLM mask id
    export_hf(model, tmp_path / "hf", tokenizer=tok)
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    for text in ("The lazy dog jumps.", "语言模型学习文本。", "mixed 模型 text"):
        assert hf_tok(text, add_special_tokens=False)["input_ids"] == tok.encode(text)
    assert hf_tok.convert_tokens_to_ids("<|mask|>") == tok.vocab_size
    assert hf_tok.eos_token_id == tok.eos_id == 3


def test_char_tokenizer_is_refused_with_the_reason(tmp_path):
    from llmtrain.tokenizer import train_tokenizer

    tok = train_tokenizer("char", ["abc def"], vocab_size=64)
    model = randomised(tiny(vocab_size=tok.vocab_size))
    with pytest.raises(ExportError, match="no Hugging Face form"):
        export_hf(model, tmp_path / "hf", tokenizer=tok)


def test_t5_tokenizer_names_mask_and_sentinels(tmp_path):
    from llmtrain.tokenizer import train_tokenizer

    texts = [
        "The quick brown fox jumps over the lazy dog. " * 20,
        "语言模型从大量文本中学习。" * 20,
    ]
    tok = train_tokenizer("bpe", texts, vocab_size=300)
    V = tok.vocab_size
    model = randomised(tiny(**CASES["t5_v1_1"], vocab_size=V + 1 + 5))  # MASK + 5 sentinels
    export_hf(model, tmp_path / "hf", tokenizer=tok)
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    for text in ("The lazy dog jumps.", "语言模型学习文本。"):
        assert hf_tok(text, add_special_tokens=False)["input_ids"] == tok.encode(text)
    assert hf_tok.mask_token_id == V
    assert hf_tok.convert_tokens_to_ids([f"<extra_id_{i}>" for i in range(5)]) == list(
        range(V + 1, V + 6)
    )
    assert len(hf_tok) == model.cfg.vocab_size
