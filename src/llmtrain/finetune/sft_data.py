"""Instruction / chat SFT examples: `messages` JSONL (multi-turn, roles system/user/assistant)
or Alpaca-style `instruction` / `input` / `output` rows, rendered with the chat template.

`SFTData.batch(indices)` yields right-padded inputs x (B, T) and targets y (B, T) where y[t]
is the next token when it is an assistant token and IGNORE_INDEX otherwise (prompt, system
and user tokens and padding are never learned). Examples longer than `max_length` are cut
and counted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from llmtrain.errors import DataError
from llmtrain.finetune.chat import ChatFormat, check_messages, render
from llmtrain.finetune.datasets import Skipped
from llmtrain.finetune.tables import Row
from llmtrain.objectives.base import IGNORE_INDEX


def row_messages(row: Row, path: str, messages_field: str) -> list[dict[str, str]]:
    """The conversation of one row: its `messages`, or an Alpaca instruction/input/output."""
    where = f"{path}:{row.line}"
    f = row.fields
    if messages_field in f:
        return check_messages(f[messages_field], where)
    if "instruction" in f and "output" in f:
        prompt = str(f["instruction"]).strip()
        extra = str(f.get("input") or "").strip()
        if extra:
            prompt += "\n\n" + extra
        return [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": str(f["output"])},
        ]
    raise DataError(
        f"{where}: neither {messages_field!r} nor instruction/output fields (has "
        f"{', '.join(map(str, f))}); use messages JSONL or Alpaca rows, or set "
        "finetune.messages_field"
    )


class SFTData:
    """A data source of rendered conversations (see module docstring)."""

    def __init__(
        self,
        tokenizer,
        fmt: ChatFormat,
        rows: list[Row],
        path: str,
        max_length: int,
        messages_field: str = "messages",
        train_on_prompt: bool = False,
    ) -> None:
        self.pad_id, self.rows, self.truncated, self.skipped = tokenizer.pad_id, [], 0, Skipped()
        self.lines = []
        for r in rows:
            ids, learn = render(tokenizer, fmt, row_messages(r, path, messages_field))
            if train_on_prompt:
                learn = [True] * len(ids)
            if len(ids) > max_length + 1:
                ids, learn, self.truncated = (
                    ids[: max_length + 1],
                    learn[: max_length + 1],
                    self.truncated + 1,
                )
            if not any(learn[1:]):
                self.skipped.add("no assistant token within max_length", r.line)
                continue
            self.rows.append((np.asarray(ids, np.int64), np.asarray(learn, bool)))
            self.lines.append(r.line)
        if not self.rows:
            raise DataError(f"{path}: no usable conversation; check the file")

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, idx: Sequence[int]) -> SFTData:
        out = object.__new__(SFTData)
        out.pad_id, out.truncated, out.skipped = self.pad_id, 0, Skipped()
        out.rows = [self.rows[i] for i in idx]
        out.lines = [self.lines[i] for i in idx]
        return out

    def batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        rows = [self.rows[int(i)] for i in indices]
        T = max(len(ids) for ids, _ in rows) - 1
        x = torch.full((len(rows), T), self.pad_id, dtype=torch.long)
        y = torch.full((len(rows), T), IGNORE_INDEX, dtype=torch.long)
        for b, (ids, learn) in enumerate(rows):
            n = len(ids) - 1
            x[b, :n] = torch.from_numpy(ids[:-1])
            tgt = torch.from_numpy(ids[1:])
            y[b, :n] = torch.where(torch.from_numpy(learn[1:]), tgt, IGNORE_INDEX)
        return {"x": x, "y": y}
