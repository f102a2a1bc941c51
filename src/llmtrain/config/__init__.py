"""Typed configuration: dataclass sections loaded from dicts/JSON with precise errors, and
`--set a.b=c` dotted overrides. Precedence: defaults < preset < files < overrides."""

from llmtrain.config.core import (
    ConfigSection,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    deep_merge,
    load_json_file,
    parse_override,
)

__all__ = [
    "ConfigSection",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "deep_merge",
    "load_json_file",
    "parse_override",
]
