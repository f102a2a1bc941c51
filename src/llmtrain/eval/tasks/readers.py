"""Readers of multiple-choice task files in their published formats, each row → `MCItem`.

`arc` (AI2 JSONL, also OpenBookQA), `piqa` (JSONL + `*-labels.lst`), `hellaswag` (JSONL) and
`mc`, the plain format any task can be written in: {"query", "choices", "gold"} (C-Eval/CMMLU
rows {"question", "A".."D", "answer"} are read as `mc` too). Prompts follow
lm-evaluation-harness's task templates; every bad row is one DataError naming file and line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmtrain.errors import DataError


@dataclass(frozen=True)
class MCItem:
    """One multiple-choice question: the model scores `delimiter + choice` after `query`."""

    query: str  # the context as shown to the model (before any few-shot examples)
    choices: tuple[str, ...]  # continuations; normalisations count their characters / bytes
    gold: int  # index of the right choice
    delimiter: str = " "  # put between query and choice (lm-eval's target_delimiter)


class RowError(ValueError):
    """A row is unusable; the message says what is wrong and how to fix it."""


def _need(row: dict, key: str, kind: type | tuple[type, ...], fix: str) -> Any:
    if key not in row:
        raise RowError(f"missing field {key!r}; {fix}")
    value = row[key]
    if not isinstance(value, kind):
        raise RowError(f"field {key!r} is {type(value).__name__}, not {_kind_name(kind)}; {fix}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


ARC_FIX = 'an ARC row is {"question": {"stem": ..., "choices": [{"text", "label"}]}, "answerKey"}'


def arc_item(row: dict) -> MCItem:
    """AI2 ARC / OpenBookQA: lm-eval's `Question: {stem}\\nAnswer:` and ` {choice}`."""
    q = _need(row, "question", dict, ARC_FIX)
    stem = _need(q, "stem", str, ARC_FIX)
    choices = _need(q, "choices", list, ARC_FIX)
    if not all(isinstance(c, dict) and "text" in c and "label" in c for c in choices):
        raise RowError(f"every choice needs 'text' and 'label'; {ARC_FIX}")
    labels = [str(c["label"]) for c in choices]
    key = str(_need(row, "answerKey", (str, int), ARC_FIX))
    if key not in labels:
        raise RowError(f"answerKey {key!r} is not one of the labels {labels}; fix the row")
    texts = tuple(str(c["text"]) for c in choices)
    return MCItem(f"Question: {stem}\nAnswer:", texts, labels.index(key))


PIQA_FIX = 'a PIQA row is {"goal", "sol1", "sol2"} with its 0/1 label in a *-labels.lst file'


def piqa_item(row: dict, label: int | None) -> MCItem:
    """PIQA: lm-eval's `Question: {goal}\\nAnswer:` and ` {sol}`; the label comes from the
    `*-labels.lst` file beside it (or a `label` field)."""
    goal = _need(row, "goal", str, PIQA_FIX)
    sols = (_need(row, "sol1", str, PIQA_FIX), _need(row, "sol2", str, PIQA_FIX))
    if label is None:
        label = _need(row, "label", int, PIQA_FIX)
    return MCItem(f"Question: {goal}\nAnswer:", sols, int(label))


HELLASWAG_FIX = 'a HellaSwag row is {"ctx" (or "ctx_a"+"ctx_b"), "endings": [...], "label"}'


def _hs_clean(text: str) -> str:
    """lm-eval's HellaSwag `preprocess`: drop WikiHow's [title]/[step] artifacts."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def hellaswag_item(row: dict) -> MCItem:
    """HellaSwag: `{activity_label}: {ctx_a} {Ctx_b}` and ` {ending}`, as lm-eval builds it."""
    if "ctx_a" in row and "ctx_b" in row:
        ctx = f"{row['ctx_a']} {str(row['ctx_b']).capitalize()}"
    else:
        ctx = _need(row, "ctx", str, HELLASWAG_FIX)
    label = row.get("activity_label")
    query = _hs_clean(f"{label}: {ctx}" if label else ctx)
    endings = _need(row, "endings", list, HELLASWAG_FIX)
    gold = _need(row, "label", (int, str), HELLASWAG_FIX)
    if isinstance(gold, str) and not gold.strip().lstrip("-").isdigit():
        raise RowError(f"label {gold!r} is not an integer index; {HELLASWAG_FIX}")
    return MCItem(query, tuple(_hs_clean(str(e)) for e in endings), int(gold))


MC_FIX = (
    'an mc row is {"query": str, "choices": [str, ...], "gold": int} (optional "delimiter", '
    'default ""), or a C-Eval row {"question", "A".."D", "answer": "A".."D"}'
)
LETTERS = "ABCDEFGHIJ"


def mc_item(row: dict) -> MCItem:
    """The plain format, used verbatim: the model scores `delimiter + choices[i]` after
    `query` (write the separator you want; Chinese usually none). C-Eval/CMMLU rows become
    query `{question}\\n答案：` with the option texts as choices."""
    if "query" not in row and "question" in row and "A" in row:
        letters = [x for x in LETTERS if x in row]
        answer = _need(row, "answer", str, MC_FIX).strip()
        if answer not in letters:
            raise RowError(f"answer {answer!r} is not one of the options {letters}; fix the row")
        question = _need(row, "question", str, MC_FIX)
        choices = tuple(str(row[x]) for x in letters)
        return MCItem(f"{question}\n答案：", choices, letters.index(answer), "")
    query = _need(row, "query", str, MC_FIX)
    choices = _need(row, "choices", list, MC_FIX)
    gold = _need(row, "gold", int, MC_FIX)
    delimiter = row.get("delimiter", "")
    if not isinstance(delimiter, str):
        raise RowError(f"field 'delimiter' must be a string; {MC_FIX}")
    return MCItem(query, tuple(str(c) for c in choices), gold, delimiter)


def check_item(item: MCItem) -> MCItem:
    """Choices that can be scored: at least two, none empty, gold in range."""
    if len(item.choices) < 2:
        raise RowError(f"{len(item.choices)} choice(s); a question needs at least two")
    for i, c in enumerate(item.choices):
        if not c.strip():
            raise RowError(f"choice {i} is empty; give every choice some text or drop it")
    if not 0 <= item.gold < len(item.choices):
        raise RowError(
            f"gold index {item.gold} is out of range for {len(item.choices)} choices "
            f"(0..{len(item.choices) - 1}); gold counts from 0"
        )
    return item


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, row) of every non-blank line; DataError naming the line otherwise."""
    try:
        f = path.open(encoding="utf-8")
    except OSError as e:
        raise DataError(f"cannot read task file {path}: {e.strerror}") from None
    with f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(
                    f"{path}:{n}: not valid JSON ({e.msg}); a task file has one JSON object "
                    "per line"
                ) from None
            except UnicodeDecodeError:
                raise DataError(f"{path}:{n}: not UTF-8; convert the file to UTF-8") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{n}: a row must be a JSON object, got {row!r:.40}")
            yield n, row


def piqa_labels(path: Path) -> list[int] | None:
    """The labels beside a PIQA file: `valid.jsonl` → `valid-labels.lst` (None if absent)."""
    lst = path.with_name(path.name.removesuffix(".jsonl") + "-labels.lst")
    if not lst.is_file():
        return None
    labels = []
    for n, line in enumerate(lst.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip() not in ("0", "1"):
            raise DataError(f"{lst}:{n}: label {line.strip()!r} is not 0 or 1; fix the file")
        labels.append(int(line))
    return labels


Reader = Callable[[dict], MCItem]
READERS: dict[str, Reader] = {"arc": arc_item, "hellaswag": hellaswag_item, "mc": mc_item}


def detect_format(row: dict) -> str | None:
    """The format a first row is written in, from its fields; None when none fits."""
    if isinstance(row.get("question"), dict) and "answerKey" in row:
        return "arc"
    if "goal" in row and "sol1" in row:
        return "piqa"
    if "endings" in row and ("ctx" in row or "ctx_a" in row):
        return "hellaswag"
    if "query" in row and "choices" in row or "question" in row and "A" in row:
        return "mc"
    return None
