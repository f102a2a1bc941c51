"""The Hugging Face adapter table: every module in `families/` defines one `FAMILY`
(config mapping, weight rows, checks, its targets), found here at import. Everything that
names HF targets derives from this table: `TARGETS`, `TargetName` (the type of
`model.hf_target`), the `export --target` choices, `pick_target`, import by `model_type`.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Literal

from llmtrain.errors import ExportError
from llmtrain.models.hf import families as _families
from llmtrain.models.hf.base import Family, Row, Target, require, rows_from_hf, rows_to_hf

if TYPE_CHECKING:
    from llmtrain.models.config import ModelConfig


def _discover() -> dict[str, Family]:
    found = {}
    for info in sorted(pkgutil.iter_modules(_families.__path__), key=lambda m: m.name):
        family = importlib.import_module(f"{_families.__name__}.{info.name}").FAMILY
        found[family.name] = family
    return found


FAMILIES: dict[str, Family] = _discover()
# every target, part targets (ELECTRA's generator) included
ALL_TARGETS: dict[str, Target] = {t.name: t for f in FAMILIES.values() for t in f.targets}
# the targets a user can choose (`export --target`, `model.hf_target`)
TARGETS: dict[str, Target] = {n: t for n, t in ALL_TARGETS.items() if t.choosable}
TargetName = Literal[tuple(TARGETS)]  # type: ignore[valid-type]
_FAMILY_OF = {t.name: f for f in FAMILIES.values() for t in f.targets}
if len(_FAMILY_OF) != sum(len(f.targets) for f in FAMILIES.values()):
    raise ValueError("two HF families define a target of the same name")


def get_target(name: str) -> Target:
    """The target called `name`; ExportError listing the choices when there is none."""
    if name not in ALL_TARGETS:
        raise ExportError(f"unknown HF target {name!r}; choose one of {', '.join(TARGETS)}")
    return ALL_TARGETS[name]


def family_of(target: str) -> Family:
    get_target(target)
    return _FAMILY_OF[target]


def family_for_model_type(model_type: str | None) -> Family:
    """The family that imports config.json's `model_type`; ExportError naming the ones
    that exist."""
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    known = ", ".join(m for f in FAMILIES.values() for m in f.model_types)
    raise ExportError(f"cannot import HF model_type {model_type!r}; supported: {known}")


def pick_target(cfg: ModelConfig) -> str:
    """The HF target a model maps onto: `model.hf_target`, else the one family that claims
    its options."""
    if cfg.hf_target:
        return cfg.hf_target
    picked = [t for f in FAMILIES.values() if (t := f.pick(cfg))]
    if len(picked) != 1:
        raise ExportError(
            f"no single HF target for this model (candidates: {picked or 'none'}); set "
            f"model.hf_target or --target to one of {', '.join(TARGETS)}"
        )
    return picked[0]


__all__ = [
    "ALL_TARGETS",
    "FAMILIES",
    "TARGETS",
    "Family",
    "Row",
    "Target",
    "TargetName",
    "family_for_model_type",
    "family_of",
    "get_target",
    "pick_target",
    "require",
    "rows_from_hf",
    "rows_to_hf",
]
