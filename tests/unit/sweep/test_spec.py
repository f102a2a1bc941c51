"""Sweep specs: a good spec (JSON and YAML) resolves; every mistake is one ConfigError line
naming the spec file, the key and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmtrain.errors import ConfigError
from llmtrain.sweep.spec import load_spec


@pytest.fixture
def data_dir(tmp_path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    (d / "manifest.json").write_text("{}")  # the spec only checks that it is a DATA_DIR
    return d


def write(tmp_path: Path, spec: dict, name: str = "spec.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(spec), encoding="utf-8")
    return p


GOOD = {
    "data": "data",
    "base": {"model.n_layer": 1, "model.n_embd": 32, "model.n_head": 2},
    "params": {
        "train.lr": {"low": 1e-4, "high": 1e-2, "log": True},
        "model.n_layer": {"choices": [1, 2]},
        "train.batch_size": {"low": 4, "high": 16, "step": 4},
    },
    "trials": 5,
    "steps": 40,
}


def test_good_spec_resolves(tmp_path, data_dir):
    spec = load_spec(write(tmp_path, GOOD))
    assert spec.data == str(data_dir)  # relative to the spec file's folder
    assert spec.base["model"]["n_embd"] == 32
    lr, layers, batch = spec.params.values()
    assert (lr.kind, lr.log, layers.kind, batch.kind) == ("float", True, "choice", "int")
    assert batch.grid_values() == [4, 8, 12, 16]
    assert "train.max_steps=40" in spec.fixed_overrides()
    assert "train.eval_every=5" in spec.fixed_overrides()  # steps // 8 by default


def test_yaml_spec_and_preset_base(tmp_path, data_dir):
    p = tmp_path / "spec.yaml"
    p.write_text(
        "data: data\nbase: gpt2-tiny\nparams:\n  train.lr: {low: 0.001, high: 0.01}\n"
        "name: 中文扫描\n",
        encoding="utf-8",
    )
    spec = load_spec(p)
    assert spec.name == "中文扫描" and spec.params["train.lr"].high == 0.01


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"params": {"train.lrr": {"low": 1, "high": 2}}},
            "unknown config key 'train.lrr'.*'train.lr'",
        ),
        ({"params": {"train.lr": {"low": 0.1, "high": 0.01}}}, "low 0.1 > high 0.01; swap them"),
        ({"params": {"model.n_layer": {"choices": []}}}, "'choices' is empty"),
        ({"params": {"train.lr": {"low": 0, "high": 1, "log": True}}}, "log range needs low > 0"),
        ({"params": {"model.n_layer": {"low": 1.5, "high": 4}}}, "integer key; low 1.5"),
        ({"params": {"train.precision": {"low": 1, "high": 2}}}, "not numeric; give 'choices'"),
        ({"params": {"train.precision": {"choices": ["fp64"]}}}, "'fp64' is not valid"),
        ({"params": {}}, "'params' must map config keys"),
        ({"trails": 3}, "unknown spec key 'trails'; did you mean 'trials'"),
        ({"trials": 0}, "'trials' must be a positive integer"),
        ({"sampler": "bayes"}, "sampler 'bayes' is not one of tpe, random, grid"),
        ({"pruner": "hyperband"}, "pruner 'hyperband' is not one of"),
        ({"metric": "loss"}, "use a val_\\* key"),
        ({"sampler": "grid"}, "grid' needs a finite set for 'train.lr'"),
        ({"data": "nowhere"}, "not a prepared DATA_DIR"),
        ({"start": [{"train.wd": 1}]}, "start: 'train.wd' is not one of the params"),
        ({"base": {"model.n_layers": 2}}, "base: unknown config key 'model.n_layers'"),
    ],
)
def test_bad_spec_is_one_line_naming_the_file(tmp_path, data_dir, change, message):
    path = write(tmp_path, {**GOOD, **change}, name="my_sweep.json")
    with pytest.raises(ConfigError, match=message) as err:
        load_spec(path)
    text = str(err.value)
    assert text.startswith(str(path)) and "\n" not in text


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_spec(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.json: not valid json"):
        load_spec(tmp_path / "bad.json")


def test_shipped_example_spec_is_valid(data_dir):
    root = Path(__file__).resolve().parents[3]
    spec = load_spec(root / "configs/sweeps/shakespeare_char.yaml", data_override=str(data_dir))
    assert spec.trials == 20 and spec.base["model"]["block_size"] == 64  # from the base config
    assert spec.params["optim.weight_decay"].kind == "float"
