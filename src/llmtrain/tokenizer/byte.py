"""`ByteTokenizer`: one id per UTF-8 byte (id = byte + 4), after the four special tokens.

Vocabulary 260, nothing to train, never an unknown token. Encoding is one numpy view of the
UTF-8 bytes; decoding replaces a cut multi-byte sequence with U+FFFD.
"""

from __future__ import annotations

import numpy as np

from llmtrain.tokenizer.arrays import N_SPECIAL, ArrayTokenizer


class ByteTokenizer(ArrayTokenizer):
    """Byte-level tokenizer: ids 0..3 are specials, 4..259 the bytes 0..255."""

    kind = "byte"
    vocab_size = 256 + N_SPECIAL

    def encode_array(self, text: str) -> np.ndarray:
        """Token ids as a uint16 array (the packing step writes these without a list)."""
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint16) + N_SPECIAL

    def text_of(self, ids: np.ndarray) -> str:
        ids = ids[ids >= N_SPECIAL] - N_SPECIAL  # specials carry no text
        return ids.astype(np.uint8).tobytes().decode("utf-8", errors="replace")
