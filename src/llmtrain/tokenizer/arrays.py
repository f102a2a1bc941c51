"""`ArrayTokenizer`: what the numpy tokenizers (byte, char) share: list/batch encoding from
`encode_array`, range-checked decoding through `text_of`, the special ids and `save`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmtrain.errors import DataError
from llmtrain.tokenizer.base import BOS_ID, CUT_KINDS, EOS_ID, META_FILE, PAD_ID, UNK_ID
from llmtrain.utils.io import atomic_write_json

N_SPECIAL = 4  # ids 0..3: PAD, UNK, BOS, EOS


class ArrayTokenizer:
    """Base of a tokenizer whose ids come from one numpy pass over the text.

    Subclasses set `kind` and `vocab_size` and implement `encode_array(text)` and
    `text_of(ids)` (ids already checked to lie in the vocabulary); `meta()` adds their
    own fields to the saved `llmtrain_tokenizer.json`.
    """

    kind = "array"
    vocab_size = N_SPECIAL
    pad_id, unk_id, bos_id, eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID
    safe_cuts = CUT_KINDS  # one id per character: any cut is exact

    def encode_array(self, text: str) -> np.ndarray:
        raise NotImplementedError

    def text_of(self, ids: np.ndarray) -> str:
        raise NotImplementedError

    def meta(self) -> dict[str, Any]:
        return {}

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode(self, ids: Iterable[int]) -> str:
        arr = np.fromiter(ids, dtype=np.int64)
        if len(arr) and (arr.max() >= self.vocab_size or arr.min() < 0):
            raise DataError(
                f"token id out of range for the {self.kind} vocabulary of {self.vocab_size}"
            )
        return self.text_of(arr)

    def save(self, directory: str | Path) -> None:
        specials = {k: getattr(self, k) for k in ("pad_id", "unk_id", "bos_id", "eos_id")}
        meta = {"type": self.kind, "vocab_size": self.vocab_size, **specials, **self.meta()}
        atomic_write_json(Path(directory) / META_FILE, meta)
