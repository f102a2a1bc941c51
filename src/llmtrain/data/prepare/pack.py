"""Tokenize and pack: documents → token ids → shards, streamed chunk by chunk.

Long documents are cut into ~64k-character pieces at boundaries where byte-level BPE cannot
merge across (a newline between two non-space characters), so one book still encodes on all
cores through `encode_batch`, with ids identical to encoding it whole. Char and byte
tokenizers encode vectorised (`encode_array`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np

from llmtrain.data.shards import ShardWriter
from llmtrain.tokenizer.base import Tokenizer

PIECE_CHARS = 1 << 16
CHUNK_BYTES = 1 << 20  # text encoded at once: its encodings take ~40x that (~40 MiB)
# After "\S\n" and before "\S": the GPT-2 pre-tokenizer ends a token on each side of this
# newline, so pieces cut here encode exactly as the whole text does.
_SAFE_CUT = re.compile(r"(?<=\S\n)(?=\S)")


def encoding_pieces(text: str, max_chars: int = PIECE_CHARS) -> list[str]:
    """Cut `text` into pieces of at least `max_chars` characters at safe boundaries."""
    pieces, start = [], 0
    while len(text) - start > max_chars:
        m = _SAFE_CUT.search(text, start + max_chars)
        if m is None:
            break
        pieces.append(text[start : m.start()])
        start = m.start()
    pieces.append(text[start:])
    return pieces


def encode_documents(tok: Tokenizer, texts: list[str]) -> list[np.ndarray]:
    """Token ids (int64 arrays, no EOS) of each text; BPE pieces go through one encode_batch."""
    encode_array = getattr(tok, "encode_array", None)
    if encode_array is not None:
        return [encode_array(t) for t in texts]
    pieces: list[str] = []
    owners: list[int] = []
    for i, text in enumerate(texts):
        for piece in encoding_pieces(text):
            pieces.append(piece)
            owners.append(i)
    parts: list[list[np.ndarray]] = [[] for _ in texts]
    for owner, ids in zip(owners, tok.encode_batch(pieces)):
        parts[owner].append(np.asarray(ids, dtype=np.int64))
    return [np.concatenate(p) if len(p) > 1 else p[0] for p in parts]


class Packer:
    """Buffers (split, text) pairs, encodes them a chunk at a time, writes them to shards."""

    def __init__(
        self,
        tok: Tokenizer,
        writers: dict[str, ShardWriter],
        on_bytes: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.tok, self.writers, self.on_bytes = tok, writers, on_bytes
        self.stats: dict[str, Counter[str]] = {s: Counter() for s in writers}
        self._buffer: list[tuple[str, str]] = []
        self._buffer_bytes = 0

    def add(self, split: str, text: str) -> None:
        size = len(text.encode("utf-8"))
        self._buffer.append((split, text))
        self._buffer_bytes += size
        counts = self.stats[split]
        counts["documents"] += 1
        counts["bytes"] += size
        counts["chars"] += len(text)
        if self._buffer_bytes >= CHUNK_BYTES:
            self.flush()

    def add_all(self, items: Iterable[tuple[str, str]]) -> None:
        for split, text in items:
            self.add(split, text)

    def flush(self) -> None:
        if not self._buffer:
            return
        encoded = encode_documents(self.tok, [text for _, text in self._buffer])
        for (split, _), ids in zip(self._buffer, encoded):
            self.writers[split].add(ids)
            counts = self.stats[split]
            counts["tokens"] += len(ids) + 1  # + EOS
            counts["unk_tokens"] += int(np.count_nonzero(ids == self.tok.unk_id))
        self.on_bytes(self._buffer_bytes)
        self._buffer, self._buffer_bytes = [], 0

    def close(self) -> dict[str, dict]:
        """Flush, close the shards, return per-split counts and shard records."""
        self.flush()
        out = {}
        for split, writer in self.writers.items():
            counts = self.stats[split]
            out[split] = {
                "documents": counts["documents"],
                "tokens": counts["tokens"],
                "bytes": counts["bytes"],
                "chars": counts["chars"],
                "unk_tokens": counts["unk_tokens"],
                "shards": writer.close(),
            }
        return out
