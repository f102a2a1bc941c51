"""The sweep spec: a small JSON or YAML file naming the data, a base config, the config keys to
search with their ranges, and the budget. `load_spec(path)` validates it against the run
config dataclasses and returns a `SweepSpec`; every mistake is one `ConfigError` line naming
the spec file, the key and the fix.

    {"data": "data/shakespeare", "base": {"preset": "gpt2-tiny"},
     "params": {"train.lr": {"low": 1e-4, "high": 1e-2, "log": true},
                "model.n_layer": {"choices": [2, 4]}},
     "trials": 20, "steps": 300, "metric": "val_bpb", "direction": "minimize",
     "sampler": "tpe", "pruner": "median"}
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmtrain.errors import ConfigError

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "halving", "none")
TOP_KEYS = {
    "data", "base", "params", "trials", "steps", "eval_every", "metric", "direction",
    "sampler", "pruner", "prune_after", "seed", "name", "start",
}  # fmt: skip
RANGE_KEYS = {"low", "high", "log", "step", "choices"}


@dataclass
class Param:
    """One searched config key: a numeric range (`kind` int or float) or a list of choices."""

    key: str  # dotted: section.field
    kind: str  # "int" | "float" | "choice"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] = field(default_factory=list)

    def grid_values(self) -> list[Any] | None:
        """Every value a grid visits: the choices, or low..high by `step`; None if continuous."""
        if self.kind == "choice":
            return list(self.choices)
        if self.step is None:
            return None
        n = int(round((self.high - self.low) / self.step)) + 1
        vals = [self.low + i * self.step for i in range(n)]
        return [int(v) for v in vals] if self.kind == "int" else vals

    def extremes(self) -> list[Any]:
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]


@dataclass
class SweepSpec:
    source: str  # the spec file (for messages)
    data: str
    base: dict[str, Any]  # nested run config the trials start from (preset/files resolved)
    params: dict[str, Param]
    trials: int = 20
    steps: int = 300
    eval_every: int = 0  # 0: steps // 8
    metric: str = "val_bpb"
    direction: str = "minimize"
    sampler: str = "tpe"
    pruner: str = "median"
    prune_after: int = 0  # no pruning before this step (e.g. past the LR warm-up)
    seed: int = 0
    name: str = "sweep"
    start: list[dict[str, Any]] = field(default_factory=list)  # trials to run first (known
    # good values, a planned config): enqueued when the study is new

    def fixed_overrides(self) -> list[str]:
        """What every trial sets besides its parameters: data, length, eval cadence, one
        final checkpoint."""
        every = self.eval_every or max(1, self.steps // 8)
        return [
            f"data.path={json.dumps(self.data)}",
            f"train.max_steps={self.steps}",
            f"train.eval_every={every}",
            f"train.checkpoint_every={self.steps}",
            "train.keep_last=1",
        ]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _fail(source: str, message: str) -> typing.NoReturn:
    raise ConfigError(f"{source}: {message}")


def read_spec_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep spec {path} not found; pass a JSON or YAML file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml  # optuna depends on PyYAML

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:  # json.JSONDecodeError, yaml.YAMLError
        raise ConfigError(f"{path}: not valid {path.suffix[1:] or 'JSON'}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a sweep spec is an object with 'data' and 'params'")
    return data


def load_spec(path: str | Path, data_override: str | None = None) -> SweepSpec:
    """Read and validate a spec file; relative paths in it are relative to its folder."""
    raw = read_spec_file(path)
    return spec_from_dict(raw, str(path), Path(path).resolve().parent, data_override)


def spec_from_dict(
    raw: dict[str, Any], source: str, root: Path, data_override: str | None = None
) -> SweepSpec:
    for k in raw:
        if k not in TOP_KEYS:
            close = difflib.get_close_matches(k, sorted(TOP_KEYS), n=1)
            hint = (
                f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(sorted(TOP_KEYS))}"
            )
            _fail(source, f"unknown spec key {k!r}; {hint}")
    data = data_override or raw.get("data")
    if not data:
        _fail(source, "no 'data': name a DATA_DIR written by `llmtrain prepare` (or pass --data)")
    data = str(_path(data, root)) if not data_override else str(Path(data).resolve())
    if not (Path(data) / "manifest.json").is_file():
        _fail(source, f"data {data} is not a prepared DATA_DIR (no manifest.json); run prepare")
    spec = SweepSpec(
        source=source,
        data=data,
        base=_base(raw.get("base", {}), source, root),
        params={},
        trials=_positive(raw, "trials", 20, source),
        steps=_positive(raw, "steps", 300, source),
        eval_every=_positive(raw, "eval_every", 0, source, zero_ok=True),
        metric=str(raw.get("metric", "val_bpb")),
        direction=_one_of(raw, "direction", ("minimize", "maximize"), source),
        sampler=_one_of(raw, "sampler", SAMPLERS, source),
        pruner=_one_of(raw, "pruner", PRUNERS, source),
        prune_after=_positive(raw, "prune_after", 0, source, zero_ok=True),
        seed=int(raw.get("seed", 0)),
        name=str(raw.get("name", "sweep")),
    )
    if not spec.metric.startswith("val_"):
        _fail(source, f"metric {spec.metric!r}: use a val_* key of the eval records (val_bpb)")
    params = raw.get("params")
    if not isinstance(params, dict) or not params:
        _fail(source, "'params' must map config keys to ranges, e.g. "
              '{"train.lr": {"low": 1e-4, "high": 1e-2, "log": true}}')  # fmt: skip
    spec.params = {k: _param(k, v, source) for k, v in params.items()}
    _check_values(spec)
    spec.start = _start(raw.get("start", []), spec)
    if spec.sampler == "grid":
        size = 1
        for p in spec.params.values():
            if p.grid_values() is None:
                _fail(source, f"sampler 'grid' needs a finite set for {p.key!r}: give "
                      "'choices' or a 'step'")  # fmt: skip
            size *= len(p.grid_values())
        spec.trials = min(spec.trials, size)  # each grid point once
    return spec


def _path(p: str, root: Path) -> Path:
    q = Path(p).expanduser()
    return q if q.is_absolute() else (root / q)


def _positive(raw: dict, key: str, default: int, source: str, zero_ok: bool = False) -> int:
    v = raw.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0 or (v == 0 and not zero_ok):
        _fail(source, f"{key!r} must be a positive integer, got {v!r}")
    return v


def _one_of(raw: dict, key: str, allowed: tuple[str, ...], source: str) -> str:
    v = raw.get(key, allowed[0])
    if v not in allowed:
        _fail(source, f"{key} {v!r} is not one of {', '.join(allowed)}")
    return v


def _base(base: Any, source: str, root: Path) -> dict[str, Any]:
    """The trials' starting config: a dict (nested or dotted keys, optionally with 'preset'
    and 'config' files), a config file path, or a preset name."""
    from llmtrain.config import config_to_dict
    from llmtrain.train.config import load_run_config

    if isinstance(base, str):
        base = {"config": base} if base.endswith((".json", ".yaml", ".yml")) else {"preset": base}
    if not isinstance(base, dict):
        _fail(source, "'base' must be an object, a config file or a preset name")
    base = dict(base)
    preset = base.pop("preset", None)
    files = base.pop("config", [])
    files = [str(_path(f, root)) for f in ([files] if isinstance(files, str) else files)]
    dotted = {k: base.pop(k) for k in list(base) if "." in k}
    sets = [f"{k}={json.dumps(v)}" for k, v in dotted.items()]
    try:
        cfg = load_run_config(files, preset, sets, base=base)
    except ConfigError as e:
        _fail(source, f"base: {e}")
    return config_to_dict(cfg)


def _field_type(key: str, source: str) -> Any:
    """The annotation of `section.field` in RunConfig; unknown keys fail with a suggestion."""
    from llmtrain.train.config import RunConfig

    hints = typing.get_type_hints(RunConfig)
    sections = {f.name: hints[f.name] for f in dataclasses.fields(RunConfig)}
    every = [f"{s}.{f.name}" for s, cls in sections.items() for f in dataclasses.fields(cls)]
    section, _, name = key.partition(".")
    if section in sections and name in {f.name for f in dataclasses.fields(sections[section])}:
        return typing.get_type_hints(sections[section])[name]
    close = difflib.get_close_matches(key, every, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "keys are section.field, e.g. 'train.lr'"
    _fail(source, f"unknown config key {key!r} in params; {hint}")


def _param(key: str, rng: Any, source: str) -> Param:
    tp = _field_type(key, source)
    if not isinstance(rng, dict):
        rng = {"choices": rng} if isinstance(rng, list) else None
    if rng is None or not set(rng) <= RANGE_KEYS:
        bad = sorted(set(rng or {}) - RANGE_KEYS) if isinstance(rng, dict) else []
        _fail(source, f"params {key!r}: {'unknown ' + repr(bad) + '; ' if bad else ''}give "
              "{'low': L, 'high': H[, 'log': true][, 'step': S]} or {'choices': [...]}")  # fmt: skip
    if "choices" in rng:
        choices = rng["choices"]
        if not isinstance(choices, list) or not choices:
            _fail(source, f"params {key!r}: 'choices' is empty; list at least one value")
        return Param(key, "choice", choices=list(choices))
    if "low" not in rng or "high" not in rng:
        _fail(source, f"params {key!r}: a range needs both 'low' and 'high' (or use 'choices')")
    kind = _numeric_kind(tp)
    if kind is None:
        _fail(source, f"params {key!r} is not numeric; give 'choices' instead of low/high")
    low, high = rng["low"], rng["high"]
    for name, v in (("low", low), ("high", high), ("step", rng.get("step", 1))):
        if isinstance(v, bool) or not isinstance(v, int | float):
            _fail(source, f"params {key!r}: {name} must be a number, got {v!r}")
        if kind == "int" and not float(v).is_integer():
            _fail(source, f"params {key!r} is an integer key; {name} {v!r} must be whole")
    if low > high:
        _fail(source, f"params {key!r}: low {low} > high {high}; swap them")
    log = bool(rng.get("log", False))
    if log and low <= 0:
        _fail(source, f"params {key!r}: a log range needs low > 0, got {low}")
    step = rng.get("step")
    if step is not None and (step <= 0 or log):
        _fail(source, f"params {key!r}: 'step' must be > 0 and cannot be combined with log")
    cast = int if kind == "int" else float
    return Param(key, kind, cast(low), cast(high), log, None if step is None else cast(step))


def _numeric_kind(tp: Any) -> str | None:
    args = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
    if int in args and float not in args:
        return "int"
    return "float" if float in args else None


def _start(start: Any, spec: SweepSpec) -> list[dict[str, Any]]:
    """'start': [{"train.lr": 3e-3}, ...]: each a subset of the params, tried first."""
    from llmtrain.train.config import load_run_config

    if not isinstance(start, list) or not all(isinstance(s, dict) for s in start):
        _fail(spec.source, "'start' must be a list of objects like {\"train.lr\": 0.003}")
    for s in start:
        for k, v in s.items():
            if k not in spec.params:
                _fail(
                    spec.source, f"start: {k!r} is not one of the params ({', '.join(spec.params)})"
                )
            try:
                load_run_config([], None, [f"{k}={json.dumps(v)}"], base=spec.base)
            except ConfigError as e:
                _fail(spec.source, f"start: {e}")
    return start


def _check_values(spec: SweepSpec) -> None:
    """Each end of each range (each choice) must make a valid run config with the base."""
    from llmtrain.train.config import load_run_config

    for p in spec.params.values():
        for v in p.extremes():
            try:
                load_run_config([], None, [f"{p.key}={json.dumps(v)}"], base=spec.base)
            except ConfigError as e:
                _fail(spec.source, f"params {p.key!r} value {v!r}: {e}")
