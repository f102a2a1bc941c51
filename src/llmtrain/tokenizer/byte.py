"""`ByteTokenizer`: one id per UTF-8 byte (id = byte + 4), after the four special tokens.

Vocabulary 260, nothing to train, never an unknown token. Encoding is one numpy view of the
UTF-8 bytes; decoding replaces a cut multi-byte sequence with U+FFFD.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from llmtrain.errors import DataError
from llmtrain.tokenizer.base import BOS_ID, EOS_ID, META_FILE, PAD_ID, UNK_ID
from llmtrain.utils.io import atomic_write_json

N_SPECIAL = 4


class ByteTokenizer:
    """Byte-level tokenizer: ids 0..3 are specials, 4..259 the bytes 0..255."""

    kind = "byte"
    vocab_size = 256 + N_SPECIAL
    pad_id, unk_id, bos_id, eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID

    def encode_array(self, text: str) -> np.ndarray:
        """Token ids as a uint16 array (the packing step writes these without a list)."""
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint16) + N_SPECIAL

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode(self, ids: Iterable[int]) -> str:
        arr = np.fromiter(ids, dtype=np.int64)
        if len(arr) and (arr.max() >= self.vocab_size or arr.min() < 0):
            raise DataError(f"token id out of range for the byte vocabulary of {self.vocab_size}")
        arr = arr[arr >= N_SPECIAL] - N_SPECIAL  # specials carry no text
        return arr.astype(np.uint8).tobytes().decode("utf-8", errors="replace")

    def save(self, directory: str | Path) -> None:
        meta = {"type": self.kind, "vocab_size": self.vocab_size, **_special_ids(self)}
        atomic_write_json(Path(directory) / META_FILE, meta)


def _special_ids(tok: object) -> dict[str, int]:
    return {k: getattr(tok, k) for k in ("pad_id", "unk_id", "bos_id", "eos_id")}
