"""Every key of a config, with its type, default and the comment written beside it in the
source: `explain(RunConfig)` walks the nested sections and reads each field's comment (the
comment on its line, or the comment lines right above it), so `llmtrain config --explain`
documents every key without a second copy of the text to keep in sync."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import json
import textwrap
import tokenize
import typing
from dataclasses import dataclass
from typing import Any

from llmtrain.config.core import _type_name


@dataclass(frozen=True)
class KeyDoc:
    key: str  # dotted, e.g. "train.lr"
    type: str
    default: Any
    comment: str

    def line(self) -> str:
        default = json.dumps(self.default, ensure_ascii=False)
        text = f"{self.key}: {self.type} = {default}"
        return f"{text}\n    {self.comment}" if self.comment else text


def _comments(cls: type) -> dict[str, str]:
    """{field: comment} from the class source (trailing comment, else the block above)."""
    try:
        src = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    by_line: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            by_line[tok.start[0]] = tok.string.lstrip("#").strip()
    lines = src.splitlines()
    out: dict[str, str] = {}
    for node in ast.parse(src).body[0].body:  # type: ignore[attr-defined]
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        n, above = node.lineno, []
        k = n - 1
        while k >= 1 and lines[k - 1].strip().startswith("#"):
            above.insert(0, by_line.get(k, ""))
            k -= 1
        inline = [by_line.get(i, "") for i in range(n, (node.end_lineno or n) + 1)]
        parts = [*above, *inline]
        out[node.target.id] = " ".join(p for p in parts if p)
    return out


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def explain(cls: type, prefix: str = "") -> list[KeyDoc]:
    """A KeyDoc for every leaf key of config dataclass `cls` (nested sections flattened)."""
    hints, comments, out = typing.get_type_hints(cls), _comments(cls), []
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{f.name}" if prefix else f.name
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.extend(explain(tp, key))  # type: ignore[arg-type]
            continue
        value = _default(f)
        if dataclasses.is_dataclass(value) or isinstance(value, tuple):
            value = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else list(value)
        out.append(KeyDoc(key, _type_name(tp), value, comments.get(f.name, "")))
    return out
