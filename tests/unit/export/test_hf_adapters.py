"""The HF adapter table: every family's file is found, every model preset maps onto exactly
one target, and everything that names targets (CLI choices, `model.hf_target`) derives from
the table."""

from __future__ import annotations

import typing

import pytest

from llmtrain.config.core import config_from_dict
from llmtrain.errors import ExportError
from llmtrain.models import MODEL_PRESETS, ModelConfig
from llmtrain.models.hf import ALL_TARGETS, FAMILIES, TARGETS, family_of, get_target, pick_target


def test_each_family_file_is_one_adapter():
    assert set(FAMILIES) == {"bert", "electra", "gpt2", "llama", "t5"}
    for family in FAMILIES.values():
        for t in family.targets:
            assert family_of(t.name) is family
            assert t.auto_class.startswith("AutoModel") and t.model_class


@pytest.mark.parametrize("preset", list(MODEL_PRESETS))
def test_every_preset_maps_onto_one_target(preset):
    cfg = config_from_dict(ModelConfig, {**MODEL_PRESETS[preset], "vocab_size": 64})
    assert pick_target(cfg) in TARGETS


def test_part_targets_are_not_choices():
    assert "electra_generator" in ALL_TARGETS and "electra_generator" not in TARGETS
    assert ("generator", "electra_generator") in TARGETS["electra"].beside
    hint = typing.get_type_hints(ModelConfig)["hf_target"]
    assert "electra_generator" not in typing.get_args(typing.get_args(hint)[0])
    with pytest.raises(ExportError, match="choose one of bert"):
        get_target("opt")
