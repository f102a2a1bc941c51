"""LoRA through peft's injection: only adapters (+ head) train, a small share of a
gpt2-mini-sized model; merging gives the same logits; a target matching nothing is an error."""

import pytest
import torch

from llmtrain.errors import ConfigError
from llmtrain.models import build_model
from llmtrain.models.heads import HeadConfig, task_model
from llmtrain.models.lora import LoraConfig, count_parameters, has_lora, merge_lora
from llmtrain.train.config import load_run_config


def _base(preset: str, vocab: int = 300):
    torch.manual_seed(0)
    return build_model(load_run_config([], preset, [f"model.vocab_size={vocab}"]).model)


def test_only_adapters_train_and_they_are_few():
    model = task_model(_base("gpt2-mini", vocab=8192), None, LoraConfig(rank=4))
    trainable, total = count_parameters(model)
    assert trainable / total < 0.02  # 32,768 of 1,907,456 = 1.72 %
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert any(n.startswith("blocks.0.mlp.fc.") for n in names)  # MLP and attention alike


def test_classifier_head_trains_beside_the_adapters():
    model = task_model(_base("bert-tiny"), HeadConfig(n_classes=2), LoraConfig(rank=2))
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {"classifier.weight", "classifier.bias", "pool_dense.weight"} <= names
    assert not any(n.startswith("base.") and "lora_" not in n for n in names)


@pytest.mark.parametrize(
    "preset,head",
    [
        ("gpt2-tiny", None),
        ("llama-tiny", None),
        ("bert-tiny", HeadConfig(n_classes=3, dropout=0.0)),
    ],
)
def test_merged_equals_unmerged(preset, head):
    model = task_model(_base(preset), head, LoraConfig(rank=4, alpha=8))
    with torch.no_grad():  # peft starts B at zero: make the adapters do something
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    model.eval()
    ids = torch.randint(4, 300, (2, 12))
    args = (ids,) if head is None else (ids, torch.tensor([12, 7]))
    before = model(*args)
    merged = merge_lora(model)
    assert not has_lora(merged)
    after = merged(*args)
    assert (before - after).abs().max() <= 1e-5
    plain = _base(preset)  # and the merged weights differ from the base's: the update is in
    assert not torch.equal(
        plain.blocks[0].attn.qkv.weight,
        merged.state_dict()[("base." if head else "") + "blocks.0.attn.qkv.weight"],
    )


def test_a_target_that_matches_no_layer_is_one_clear_error():
    with pytest.raises(
        ConfigError,
        match=r"finetune.lora.targets=\['c_attn'\] match no nn.Linear layer.*its linear names are .*qkv",
    ):
        task_model(_base("gpt2-tiny"), None, LoraConfig(rank=4, targets=["c_attn"]))
