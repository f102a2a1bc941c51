from dataclasses import dataclass, field
from typing import Literal

import pytest

from llmtrain.config import apply_overrides, config_from_dict, config_to_dict, parse_override
from llmtrain.errors import ConfigError
from llmtrain.train.config import RunConfig, load_run_config


@dataclass
class Inner:
    a: int = 1
    b: float = 2.0
    mode: Literal["x", "y"] = "x"
    maybe: int | None = None
    pair: tuple[float, float] = (0.9, 0.95)


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    name: str = "n"
    flag: bool = False


def test_round_trip_and_coercion():
    cfg = config_from_dict(Outer, {"inner": {"a": 3, "b": 1, "pair": [0.1, 0.2]}, "flag": True})
    assert cfg.inner.a == 3 and cfg.inner.b == 1.0 and isinstance(cfg.inner.b, float)
    assert cfg.inner.pair == (0.1, 0.2)
    assert config_from_dict(Outer, config_to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({"inner": {"aa": 1}}, "unknown config key 'inner.aa'; did you mean 'inner.a'"),
        ({"inner": {"a": "three"}}, "'inner.a' must be an integer"),
        ({"inner": {"a": True}}, "'inner.a' must be an integer"),
        ({"inner": {"mode": "z"}}, "'inner.mode' = 'z' is not valid; choose one of 'x', 'y'"),
        ({"flag": 1}, "'flag' must be true or false"),
        ({"inner": {"pair": [1]}}, "'inner.pair' must have 2 items"),
        ({"inner": 5}, "'inner' must be an object"),
    ],
)
def test_errors_name_key_and_fix(data, fragment):
    with pytest.raises(ConfigError, match=None) as e:
        config_from_dict(Outer, data)
    assert fragment in str(e.value)


def test_overrides_parse_json_or_string():
    assert parse_override("train.lr=3e-4") == (["train", "lr"], 3e-4)
    assert parse_override("model.pos_embedding=rope") == (["model", "pos_embedding"], "rope")
    assert parse_override("a.b=null") == (["a", "b"], None)
    out = apply_overrides({"train": {"lr": 1}}, ["train.lr=2", "model.n_layer=3"])
    assert out == {"train": {"lr": 2}, "model": {"n_layer": 3}}
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_override("train.lr")


def test_run_config_precedence(tmp_path):
    f = tmp_path / "c.json"
    f.write_text('{"train": {"lr": 0.002, "max_steps": 7}, "model": {"n_layer": 3}}')
    cfg = load_run_config([f], "gpt2-tiny", ["train.max_steps=9"])
    assert cfg.train.lr == 0.002  # file beats preset
    assert cfg.train.max_steps == 9  # override beats file
    assert cfg.model.n_layer == 3
    assert isinstance(cfg, RunConfig)


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("model.n_embd=130", "model.n_embd (130) must be divisible by model.n_head"),
        (
            "train.batch_size=10",
            "train.batch_size (10) must be a multiple of train.micro_batch_size",
        ),
        ("train.min_lr=1", "min_lr <= train.lr"),
        ("train.nope=1", "unknown config key 'train.nope'"),
        ("model.norm=batchnorm", "choose one of 'layernorm', 'rmsnorm'"),
    ],
)
def test_run_config_rejects_impossible(override, fragment):
    base = ["model.n_head=4", "model.n_embd=128", "train.micro_batch_size=4", "train.batch_size=8"]
    with pytest.raises(ConfigError) as e:
        load_run_config([], None, [*base, override])
    assert fragment in str(e.value)


def test_missing_and_malformed_config_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_run_config([tmp_path / "nope.json"])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_run_config([bad])


def test_unknown_preset_lists_valid_names():
    with pytest.raises(ConfigError) as e:
        load_run_config([], "gpt5-huge")
    assert "gpt2-tiny" in str(e.value)


def test_shipped_configs_load():
    from pathlib import Path

    root = Path(__file__).resolve().parents[3] / "configs"
    # deepspeed_*.json are DeepSpeed's own configs (distributed.deepspeed_config names one)
    files = sorted(f for f in root.glob("*.json") if not f.name.startswith("deepspeed_"))
    assert len(files) >= 5
    for f in files:
        load_run_config([f])
    load_run_config(
        [
            root / "model_config.json",
            root / "training_config.json",
            root / "optimizer_config.json",
            root / "distributed_config.json",
        ]
    )
