"""`CharTokenizer`: one id per Unicode character seen in training, sorted, after the specials.

Encode and decode are vectorised over UTF-32 code points with numpy (`searchsorted` into the
sorted vocabulary), so a whole book encodes in milliseconds. Unseen characters become UNK and
decode as U+FFFD; `decode(encode(x)) == x` whenever every character of `x` was seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from llmtrain.errors import DataError
from llmtrain.tokenizer.base import BOS_ID, EOS_ID, META_FILE, PAD_ID, UNK_ID
from llmtrain.utils.io import atomic_write_json

N_SPECIAL = 4
_MAX_CODE_POINT = 0x110000
_REPLACEMENT = 0xFFFD


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype="<u4")


class CharTokenizer:
    """Character-level tokenizer over a fixed, sorted character set."""

    kind = "char"
    pad_id, unk_id, bos_id, eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID

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

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode(self, ids: Iterable[int]) -> str:
        arr = np.fromiter(ids, dtype=np.int64)
        arr = arr[(arr >= N_SPECIAL) | (arr == UNK_ID)]  # PAD/BOS/EOS carry no text
        if len(arr) and (arr.max() >= self.vocab_size or arr.min() < 0):
            raise DataError(f"token id out of range for a char vocabulary of {self.vocab_size}")
        return self._id_to_cp[arr].astype("<u4").tobytes().decode("utf-32-le")

    def save(self, directory: str | Path) -> None:
        meta = {
            "type": self.kind,
            "vocab_size": self.vocab_size,
            "pad_id": self.pad_id,
            "unk_id": self.unk_id,
            "bos_id": self.bos_id,
            "eos_id": self.eos_id,
            "chars": self.chars,
        }
        atomic_write_json(Path(directory) / META_FILE, meta)
