"""Import from Hugging Face: a tiny random model built and saved by `transformers` is read
back through the same mapping tables (config.json -> ModelConfig, weights -> our state dict)
and gives the same logits (max abs diff <= 1e-4, fp32) — RoBERTa with its PAD-offset positions
and an ELECTRA discriminator with its generator in `generator/` included; the tables invert
export exactly."""

from __future__ import annotations

import pytest
import torch

from llmtrain.config.core import config_from_dict
from llmtrain.errors import ExportError
from llmtrain.models import ModelConfig, build_model
from llmtrain.models.hf_interop import (
    config_from_hf,
    from_hf,
    hf_configs,
    hf_run_defaults,
    init_from_hf,
    pick_target,
    pos_offset_of,
    read_hf_dir,
    to_hf,
)

from .test_export_hf import CASES, randomised, tiny

transformers = pytest.importorskip("transformers")

V, T = 120, 16
SMALL = {"vocab_size": V, "num_hidden_layers": 2, "num_attention_heads": 4, "hidden_size": 32}
HF_MODELS = {
    "gpt2": (
        "GPT2Config",
        "GPT2LMHeadModel",
        {"vocab_size": V, "n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 32},
    ),
    "llama": (
        "LlamaConfig",
        "LlamaForCausalLM",
        {**SMALL, "intermediate_size": 64, "num_key_value_heads": 2},
    ),
    "mixtral": (
        "MixtralConfig",
        "MixtralForCausalLM",
        {**SMALL, "intermediate_size": 48, "num_key_value_heads": 2, "num_local_experts": 4},
    ),
    "bert": (
        "BertConfig",
        "BertForMaskedLM",
        {**SMALL, "intermediate_size": 64, "max_position_embeddings": 32},
    ),
    "bert_pretraining": (
        "BertConfig",
        "BertForPreTraining",
        {**SMALL, "intermediate_size": 64, "max_position_embeddings": 32},
    ),
    "roberta": (  # pad_token_id 1 (HF's default): positions start at row 2
        "RobertaConfig",
        "RobertaForMaskedLM",
        {**SMALL, "intermediate_size": 64, "max_position_embeddings": 34},
    ),
    "electra": (
        "ElectraConfig",
        "ElectraForPreTraining",
        {**SMALL, "intermediate_size": 64, "embedding_size": 16, "max_position_embeddings": 32},
    ),
    "t5": (
        "T5Config",
        "T5ForConditionalGeneration",
        {
            "vocab_size": V,
            "d_model": 32,
            "d_kv": 8,
            "d_ff": 48,
            "num_layers": 2,
            "num_heads": 4,
            "feed_forward_proj": "gated-gelu",
            "tie_word_embeddings": False,
        },
    ),
}


def build_hf(cfg_cls: str, model_cls: str, kw: dict):
    torch.manual_seed(0)
    hf = getattr(transformers, model_cls)(getattr(transformers, cfg_cls)(**kw)).eval()
    with torch.no_grad():  # non-trivial norms, biases and relative biases
        for n, p in hf.named_parameters():
            if p.dim() == 1 or "relative_attention_bias" in n:
                p.normal_(1.0 if "norm" in n.lower() else 0.0, 0.5)
    return hf


def save_hf(name: str, path):
    hf = build_hf(*HF_MODELS[name])
    hf.save_pretrained(path)
    return hf


def ids(low: int = 0):
    """(2, T) ids; RoBERTa's avoid its PAD (1), from which HF restarts position counting."""
    return torch.randint(low, V, (2, T), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", list(HF_MODELS))
@torch.no_grad()
def test_import_gives_the_hf_logits(name, tmp_path):
    hf = save_hf(name, tmp_path)
    hf_cfg, _ = read_hf_dir(tmp_path)
    target, fields = config_from_hf(hf_cfg)
    assert target == name
    ours = build_model(config_from_dict(ModelConfig, fields)).eval()
    assert init_from_hf(ours, tmp_path) == target
    assert pick_target(ours.cfg) == target
    idx = ids(2 if name == "roberta" else 0)
    if name == "t5":
        tgt = idx[:, : T // 2].flip(1)
        pairs = [(ours(idx, tgt), hf(input_ids=idx, decoder_input_ids=tgt).logits)]
    elif name == "electra":
        pairs = [(ours.discriminate(idx), hf(idx).logits)]
    elif name == "bert_pretraining":
        h, res = ours.forward_hidden(idx), hf(idx)
        pairs = [
            (ours.logits(h), res.prediction_logits),
            (ours.sentence_logits(h), res.seq_relationship_logits),
        ]
    else:
        pairs = [(ours(idx), hf(idx).logits)]
    for a, b in pairs:
        assert (a - b).abs().max() <= 1e-4


# an ELECTRA generator of a quarter of the discriminator's heads (width 8, FFN 64 * 8/32)
GENERATOR = {**HF_MODELS["electra"][2], "hidden_size": 8, "num_attention_heads": 1}
GENERATOR["intermediate_size"] = 16


def save_electra_pair(path, gen_kw=GENERATOR, share=True):
    """An HF discriminator in `path`, its generator in `path/generator` (embeddings shared)."""
    disc = save_hf("electra", path)
    gen = build_hf("ElectraConfig", "ElectraForMaskedLM", gen_kw)
    if share:
        gen.electra.embeddings.load_state_dict(disc.electra.embeddings.state_dict())
    gen.save_pretrained(path / "generator")
    return disc, gen


@torch.no_grad()
def test_import_electra_with_its_generator(tmp_path):
    disc, gen = save_electra_pair(tmp_path)
    target, fields = config_from_hf(*hf_configs(tmp_path))
    assert target == "electra" and fields["generator_scale"] == 0.25
    ours = build_model(config_from_dict(ModelConfig, fields)).eval()
    init_from_hf(ours, tmp_path)
    idx = ids()
    assert (ours.discriminate(idx) - disc(idx).logits).abs().max() <= 1e-4
    assert (ours.gen(idx) - gen(idx).logits).abs().max() <= 1e-4


@pytest.mark.parametrize(
    ("gen_kw", "share", "match"),
    [
        ({**GENERATOR, "intermediate_size": 20}, True, "does not have the shape"),
        (GENERATOR, False, "differs from the discriminator's"),
    ],
)
def test_electra_generator_that_cannot_be_held_is_refused(gen_kw, share, match, tmp_path):
    save_electra_pair(tmp_path, gen_kw, share)
    with pytest.raises(ExportError, match=match):
        fields = hf_run_defaults(tmp_path)["model"]
        init_from_hf(build_model(config_from_dict(ModelConfig, fields)), tmp_path)


@pytest.mark.parametrize("case", [c for c in CASES if c != "gpt2_relu"])
def test_tables_invert_export_exactly(case):
    model = randomised(tiny(**CASES[case]))
    target = pick_target(model.cfg)
    _, hf_sd = to_hf(model, target)
    offset = pos_offset_of({"model_type": target, "pad_token_id": 0})
    back = from_hf(hf_sd, model.cfg, target, offset)
    ours = model.state_dict()
    keys = [k for k in ours if not k.startswith("gen.")]  # the discriminator
    if target == "electra":  # and the generator, written beside it
        _, gen_sd = to_hf(model, "electra_generator")
        back.update(from_hf(gen_sd, model.cfg, "electra_generator"))
        keys = list(ours)
    assert set(back) == set(keys)
    assert all(torch.equal(back[k], ours[k]) for k in keys)


def test_pickled_weights_and_unknown_types_are_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(ExportError, match="safetensors"):
        read_hf_dir(tmp_path)
    with pytest.raises(ExportError, match="model_type 'opt'"):
        config_from_hf({"model_type": "opt"})
