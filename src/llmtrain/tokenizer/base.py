"""The `Tokenizer` protocol every backend implements, and the special-token convention.

Special tokens always take ids 0..3 in this order: PAD, UNK, BOS, EOS (`SPECIAL_TOKENS`).
A tokenizer directory holds `llmtrain_tokenizer.json` ({"type": ..., "vocab_size": ...,
backend fields}) plus any backend files (e.g. `tokenizer.json` for BPE).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

PAD, UNK, BOS, EOS = "<|pad|>", "<|unk|>", "<|bos|>", "<|endoftext|>"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
META_FILE = "llmtrain_tokenizer.json"
CUT_KINDS = ("line", "space", "punct")  # `Tokenizer.safe_cuts`' names, best first


@runtime_checkable
class Tokenizer(Protocol):
    kind: str  # "bpe" | "unigram" | "wordpiece" | "sentencepiece" | "char" | "byte"
    vocab_size: int
    pad_id: int
    unk_id: int
    bos_id: int
    eos_id: int
    # where a long text may be cut so that its pieces encode to the ids of the whole
    # (data/prepare/pack.py): "line" (a line break between two non-spaces), "space" (before a
    # single space between two non-spaces), "punct" (a letter or digit, then punctuation);
    # () = encode whole. Each backend states what its pre-tokenizer guarantees.
    safe_cuts: tuple[str, ...]  # a subset of CUT_KINDS, in its order

    def encode(self, text: str) -> list[int]: ...

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]: ...

    def decode(self, ids: Iterable[int]) -> str: ...

    def save(self, directory: str | Path) -> None: ...
