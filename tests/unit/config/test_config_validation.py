"""Config validation runs however a config is built (dicts, `--set`, or `Section(...)` in
Python), floats are finite, choices come from `Literal`s, presets are data, and `llmtrain
config --explain` documents every key from the source comments."""

from __future__ import annotations

import dataclasses
import math
import typing

import pytest

from llmtrain.cli.config_cmd import all_keys
from llmtrain.cli.main import main
from llmtrain.config.explain import explain
from llmtrain.data.prepare.config import PrepareConfig
from llmtrain.data.prepare.minhash import LSH_PRESETS
from llmtrain.data.prepare.quality import QUALITY_PRESETS
from llmtrain.data.prepare.textstats import SEGMENTERS
from llmtrain.errors import ConfigError
from llmtrain.models.config import ModelConfig
from llmtrain.models.presets import MODEL_PRESETS, default_objective
from llmtrain.optim.config import OptimConfig
from llmtrain.train.config import RunConfig, TrainConfig
from llmtrain.train.presets import get_run_preset


def test_a_run_config_built_in_python_is_validated():
    """Bug: `RunConfig(...)` skipped validation, so MLM on a causal decoder trained."""
    with pytest.raises(ConfigError, match="train.objective='mlm' needs model.architecture"):
        RunConfig(model=ModelConfig(architecture="decoder"), train=TrainConfig(objective="mlm"))


@pytest.mark.parametrize(
    "build, fragment",
    [
        (lambda: TrainConfig(lr=math.nan), "'train.lr' must be a finite number"),
        (lambda: TrainConfig(grad_clip=math.inf), "'train.grad_clip' must be a finite number"),
        (lambda: TrainConfig(lr="fast"), "'train.lr' must be a number"),
        (lambda: TrainConfig(seed=-1), "train.seed must be in [0, 2**32)"),
        (lambda: TrainConfig(keep_last=-1), "train.keep_last must be >= 0"),
        (lambda: TrainConfig(eval_tokens=-5), "train.eval_tokens must be positive"),
        (lambda: TrainConfig(batch_size=8, micro_batch_size=3), "multiple of"),
        (lambda: ModelConfig(n_head=0), "model.n_head must be positive"),
        (lambda: ModelConfig(dropout=math.nan), "'model.dropout' must be a finite number"),
        (lambda: OptimConfig(weight_decay=math.inf), "'optim.weight_decay' must be a finite"),
        (lambda: PrepareConfig(quality="strict"), "'quality' = 'strict' is not valid"),
        (lambda: PrepareConfig(decontaminate_mode="x"), "choose one of 'drop', 'flag'"),
    ],
)
def test_every_section_checks_itself_when_built(build, fragment):
    with pytest.raises(ConfigError) as e:
        build()
    assert fragment in str(e.value)


def test_types_are_coerced_on_construction():
    t = TrainConfig(lr=1, max_steps=10.0)
    assert isinstance(t.lr, float) and isinstance(t.max_steps, int)
    # dataclasses.replace re-validates too
    with pytest.raises(ConfigError, match="train.lr"):
        dataclasses.replace(t, lr=-1.0)


def test_unset_micro_batch_is_the_per_rank_share():
    t = TrainConfig(batch_size=8)
    assert t.micro_for(1) == 8 and t.micro_for(2) == 4 and t.grad_accum(2) == 1
    assert TrainConfig(batch_size=8, micro_batch_size=2).grad_accum(2) == 2
    with pytest.raises(ConfigError, match="divisible by the world size"):
        TrainConfig(batch_size=6).micro_for(4)


def test_prepare_choices_are_the_literals_of_their_modules():
    hints = typing.get_type_hints(PrepareConfig)
    assert typing.get_args(hints["quality"]) == tuple(QUALITY_PRESETS)
    assert typing.get_args(hints["zh_words"]) == tuple(SEGMENTERS)
    assert typing.get_args(hints["near_dedup_preset"]) == tuple(LSH_PRESETS)


def test_default_objective_follows_model_fields_not_names():
    assert default_objective({"architecture": "encoder"}) == "mlm"
    assert default_objective({"architecture": "encoder", "sentence_head": True}) == "sop"
    assert default_objective({"architecture": "encoder", "generator_scale": 0.25}) == "electra"
    assert default_objective({"architecture": "encoder_decoder"}) == "span"
    assert default_objective({}) == "clm"
    # every preset still trains with a valid objective for its shape
    for name in MODEL_PRESETS:
        data = get_run_preset(name)
        RunConfig(model=ModelConfig(**data["model"]), train=TrainConfig(**data["train"]))


def test_explain_lists_every_key_with_type_default_and_comment():
    keys = {k.key: k for k in all_keys()}

    def leaves(cls: type, prefix: str) -> set[str]:  # nested sections (finetune.lora) flatten
        hints, out = typing.get_type_hints(cls), set()
        for f in dataclasses.fields(cls):
            key = f"{prefix}.{f.name}" if prefix else f.name
            sub = hints[f.name]
            out |= leaves(sub, key) if dataclasses.is_dataclass(sub) else {key}
        return out

    run_fields = leaves(RunConfig, "")
    assert run_fields <= set(keys) and "finetune.lora.rank" in run_fields
    lr = keys["train.lr"]
    assert (lr.type, lr.default) == ("float", 6e-4) and "peak learning rate" in lr.comment
    assert "0 = keep all" in keys["train.keep_last"].comment
    quality = keys["prepare.quality"]
    assert quality.type == "'off' | 'web'" and "Gopher" in quality.comment
    # every key is documented (the comments beside the fields are the documentation)
    bare = [k for k in keys if not keys[k].comment]
    assert not bare, bare
    assert len(explain(TrainConfig, "train")) == len(dataclasses.fields(TrainConfig))


def test_config_explain_cli(capsys):
    assert main(["config", "--explain", "train.lr"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("train.lr: float = 0.0006\n") and "peak learning rate" in out
    assert main(["config", "--explain", "train.lrr"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean 'train.lr'" in err
    assert main(["config", "--explain"]) == 0
    assert "model.n_layer: int = 4" in capsys.readouterr().out
