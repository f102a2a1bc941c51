"""`CharTokenizer`: one id per Unicode character seen in training, sorted, after the specials.

Encode and decode are vectorised over UTF-32 code points with numpy (`searchsorted` into the
sorted vocabulary), so a whole book encodes in milliseconds. Unseen characters become UNK and
decode as U+FFFD; `decode(encode(x)) == x` whenever every character of `x` was seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from llmtrain.errors import DataError
from llmtrain.tokenizer.arrays import N_SPECIAL, ArrayTokenizer
from llmtrain.tokenizer.base import UNK_ID

_MAX_CODE_POINT = 0x110000
_REPLACEMENT = 0xFFFD


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype="<u4")


class CharTokenizer(ArrayTokenizer):
    """Character-level tokenizer over a fixed, sorted character set."""

    kind = "char"

    def __init__(self, chars: Iterable[str]) -> None:
        chars = sorted(set(chars))
        if any(len(c) != 1 for c in chars):
            raise DataError("a char tokenizer vocabulary must hold single characters only")
        self.chars = chars
        self._cps = np.array([ord(c) for c in chars], dtype=np.uint32)  # sorted
        # id -> code point, specials decode to nothing except UNK which shows as U+FFFD
        self._id_to_cp = np.concatenate(
            [np.array([_REPLACEMENT] * N_SPECIAL, np.uint32), self._cps]
        )
        self.vocab_size = N_SPECIAL + len(chars)

    @classmethod
    def train(cls, texts: Iterable[str]) -> CharTokenizer:
        """The vocabulary is every distinct character in `texts` (one boolean per code point)."""
        seen = np.zeros(_MAX_CODE_POINT, dtype=bool)
        for text in texts:
            seen[_code_points(text)] = True
        return cls(chr(cp) for cp in np.flatnonzero(seen))

    def encode_array(self, text: str) -> np.ndarray:
        """Token ids as an int64 array: position in the sorted vocabulary + 4, or UNK."""
        cps = _code_points(text)
        if not len(self._cps):
            return np.full(len(cps), UNK_ID, dtype=np.int64)
        pos = np.searchsorted(self._cps, cps)
        pos_clipped = np.minimum(pos, len(self._cps) - 1)
        known = self._cps[pos_clipped] == cps
        return np.where(known, pos_clipped + N_SPECIAL, UNK_ID).astype(np.int64)

    def text_of(self, ids: np.ndarray) -> str:
        ids = ids[(ids >= N_SPECIAL) | (ids == UNK_ID)]  # PAD/BOS/EOS carry no text
        return self._id_to_cp[ids].astype("<u4").tobytes().decode("utf-32-le")

    def meta(self) -> dict[str, Any]:
        return {"chars": self.chars}
