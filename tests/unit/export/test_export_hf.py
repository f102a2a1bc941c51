"""Export to Hugging Face: for each target a tiny random model is written, reloaded by
`transformers` and gives the same logits (max abs diff <= 1e-4, fp32), ELECTRA's generator
too; the mapping tables also import back exactly; options no HF class represents are
refused with the reason. (Tokenizers: test_export_tokenizers.)"""

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
    "roberta": {**BERT, "type_vocab_size": 0, "hf_target": "roberta"},
    "roberta_untied_segment": {
        **{**BERT, "type_vocab_size": 1, "hf_target": "roberta", "tie_embeddings": False},
        "norm_eps": 1e-5,
    },
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
    generative = not case.startswith(("bert", "roberta", "electra"))
    assert ("generation_config.json" in res["files"]) == generative
    if case.startswith("electra"):  # the generator is exported and checked beside it
        assert res["generator_max_abs_diff"] <= 1e-4
        hf = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / case / "generator")
        assert type(hf).__name__ == "ElectraForMaskedLM"


def test_roberta_positions_are_offset_past_pad(tmp_path):
    """HF RoBERTa reads position PAD + 1 first: our row 0 is its row 1, its row 0 is zero."""
    import safetensors.torch

    model = randomised(tiny(**CASES["roberta"]))
    export_hf(model, tmp_path)
    sd = safetensors.torch.load_file(str(tmp_path / "model.safetensors"))
    pos = sd["roberta.embeddings.position_embeddings.weight"]
    assert pos.shape == (model.cfg.block_size + 1, model.cfg.n_embd)
    assert torch.equal(pos[1:], model.wpe.weight) and not pos[0].any()


def test_roberta_is_chosen_by_flag_or_config(tmp_path):
    cfg = tiny(**{**BERT, "type_vocab_size": 0})
    assert export_hf(randomised(cfg), tmp_path / "a", target="roberta")["target"] == "roberta"
    assert export_hf(randomised(cfg), tmp_path / "b")["target"] == "bert"


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
        ({**BERT, "hf_target": "roberta", "sentence_head": True}, "no SOP/NSP head"),
        ({**BERT, "type_vocab_size": 0, "hf_target": "roberta", "mlp": "swiglu"}, "RoBERTa needs"),
    ],
)
def test_unrepresentable_models_are_refused(kw, match, tmp_path):
    with pytest.raises(ExportError, match=match):
        export_hf(
            build_model(tiny(**kw)), tmp_path / "x", target="llama" if "rope" in str(kw) else None
        )


def test_target_names_agree_across_table_config_and_cli():
    import argparse
    import typing

    from llmtrain.cli import export_cmd
    from llmtrain.export import TARGETS

    parser = argparse.ArgumentParser()
    export_cmd.register(parser.add_subparsers())
    sub = parser._subparsers._group_actions[0].choices["export"]
    cli = next(a.choices for a in sub._actions if a.dest == "target")
    literal = typing.get_args(typing.get_type_hints(ModelConfig)["hf_target"])[0]
    assert list(TARGETS) == list(cli) == list(typing.get_args(literal))
