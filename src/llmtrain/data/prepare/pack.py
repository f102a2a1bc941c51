"""Tokenize and pack: documents → token ids → shards, streamed chunk by chunk.

Long documents are cut into ~64k-character pieces at boundaries no token can span (line
breaks, then word or punctuation boundaries on lines without breaks, as far as the tokenizer's
`safe_cuts` allow), so one book, or a 1 GiB one-line file, still encodes on all cores through
`encode_batch` in bounded memory, with ids identical to encoding it whole. Char and byte
tokenizers encode vectorised (`encode_array`). Either way the tokenizer gets at most one
64k-character piece per encoding thread a call (`encode_group_chars`), so a 4 MiB document
costs no more scratch memory than as much text in small documents (`encode_documents`).
`pack_records` checkpoints the packing every so many bytes of text (`Packer.state`: counts +
each split's `ShardWriter.state`), so a rerun goes on from there; ids do not depend on where
a chunk ends, so neither do the shards.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from llmtrain.data.shards import SPLITS, ShardStateError, ShardWriter, shard_dtype
from llmtrain.tokenizer.base import Tokenizer

PIECE_CHARS = 1 << 16
# Text given to the tokenizer in one call: at most one piece per thread of the Rust pool
# (`encode_group_chars`). BPE encodings take ~40x their text and a char tokenizer's arrays
# ~30 bytes a character: with the whole of a 16 MiB document in one call `llmtrain prepare`
# peaked at 1.27 GB RSS (BPE) and 0.64 GB (char); in 1 MiB groups at 0.76-0.79 / 0.47 GB
# (`/usr/bin/time -v`, 1 worker); encoding 4 M characters of one line grew the peak by
# 144 MiB in 1 M-character groups.
ENCODE_GROUP_CHARS = 1 << 20


def encode_group_chars(threads: int) -> int:
    """Characters per tokenizer call for `threads` encoding threads: one piece each (at least
    two), so memory grows with the cores that use it (1 M characters at 16 threads)."""
    return PIECE_CHARS * min(max(2, threads), ENCODE_GROUP_CHARS // PIECE_CHARS)


CHUNK_BYTES = 1 << 20  # text encoded at once: its encodings take ~40x that (~40 MiB)
# The cuts a tokenizer may declare exact (`Tokenizer.safe_cuts`): after "\S\n" before "\S"
# (a line break), before " \S" after "\S" (a word on a line without breaks), and between a
# letter or digit and punctuation (Chinese text with no spaces). Byte-level pre-tokenizers
# end a pre-token on each side of all three, so pieces encode exactly as the whole text does.
CUTS = {
    "line": r"(?<=\S\n)(?=\S)",
    "space": r"(?<=\S)(?= \S)",
    "punct": r"(?<=[^\W_])(?=[，。！？；：、,.!?;:])",
}


def _cut_pattern(kinds: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(CUTS[k] for k in kinds)) if kinds else None


def encoding_pieces(
    text: str, max_chars: int = PIECE_CHARS, cuts: tuple[str, ...] = ("line",)
) -> list[str]:
    """Cut `text` into pieces of at least `max_chars` characters at the `cuts` given."""
    return list(_iter_pieces(text, max_chars, _cut_pattern(cuts)))


def _iter_pieces(text: str, max_chars: int, cut: re.Pattern[str] | None) -> Iterator[str]:
    start = 0
    while cut is not None and len(text) - start > max_chars:
        m = cut.search(text, start + max_chars)
        if m is None:
            break
        yield text[start : m.start()]
        start = m.start()
    yield text[start:]


def encode_documents(
    tok: Tokenizer, texts: list[str], group_chars: int = ENCODE_GROUP_CHARS,
    piece_chars: int = PIECE_CHARS,
) -> list[np.ndarray]:  # fmt: skip
    """Token ids (int64 arrays, no EOS; uint16 from the byte tokenizer) of each text.

    The tokenizer sees at most about `group_chars` characters a call, and the ids of a text's
    groups are concatenated: BPE pieces (`encoding_pieces`, cut where no token spans the cut)
    go through `encode_batch` a group at a time; an `encode_array` tokenizer (char, byte)
    maps each character on its own, so its text is cut anywhere. The ids are those of
    encoding each text whole, whatever `group_chars`."""
    parts: list[list[np.ndarray]] = [[] for _ in texts]
    encode_array = getattr(tok, "encode_array", None)
    if encode_array is not None:
        for i, text in enumerate(texts):
            for at in range(0, max(len(text), 1), group_chars):
                parts[i].append(encode_array(text[at : at + group_chars]))
    else:
        group: list[str] = []
        owners: list[int] = []
        size = 0
        cut = _cut_pattern(getattr(tok, "safe_cuts", ()))
        for i, text in enumerate(texts):
            for piece in _iter_pieces(text, piece_chars, cut):
                group.append(piece)
                owners.append(i)
                size += len(piece)
                if size >= group_chars:
                    _encode_group(tok, group, owners, parts)
                    group, owners, size = [], [], 0
        _encode_group(tok, group, owners, parts)
    return [p[0] if len(p) == 1 else np.concatenate(p) for p in parts]


def _encode_group(
    tok: Tokenizer, pieces: list[str], owners: list[int], parts: list[list[np.ndarray]]
) -> None:
    """Encode `pieces` in one `encode_batch`, appending each one's ids to its owner's parts."""
    if pieces:
        for owner, ids in zip(owners, tok.encode_batch(pieces)):
            parts[owner].append(np.asarray(ids, dtype=np.int64))


class Packer:
    """Buffers (split, text) pairs, encodes them a chunk at a time, writes them to shards."""

    def __init__(
        self,
        tok: Tokenizer,
        writers: dict[str, ShardWriter],
        on_bytes: Callable[[int], None] = lambda n: None,
        group_chars: int = ENCODE_GROUP_CHARS,
    ) -> None:
        self.tok, self.writers, self.on_bytes = tok, writers, on_bytes
        self.group_chars = group_chars
        self.stats: dict[str, Counter[str]] = {s: Counter() for s in writers}
        self._buffer: list[tuple[str, str]] = []
        self._buffer_bytes = 0
        self.bytes_added = 0  # UTF-8 bytes of text added, over both splits

    def add(self, split: str, text: str) -> None:
        size = len(text.encode("utf-8"))
        self._buffer.append((split, text))
        self._buffer_bytes += size
        self.bytes_added += size
        counts = self.stats[split]
        counts["documents"] += 1
        counts["bytes"] += size
        counts["chars"] += len(text)
        if self._buffer_bytes >= CHUNK_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        texts = [text for _, text in self._buffer]
        encoded = encode_documents(self.tok, texts, group_chars=self.group_chars)
        for (split, _), ids in zip(self._buffer, encoded):
            self.writers[split].add(ids)
            counts = self.stats[split]
            counts["tokens"] += len(ids) + 1  # + EOS
            counts["unk_tokens"] += int(np.count_nonzero(ids == self.tok.unk_id))
        self.on_bytes(self._buffer_bytes)
        self._buffer, self._buffer_bytes = [], 0

    def state(self) -> dict[str, Any]:
        """Encode and write what is buffered, make the shards durable; the JSON state
        (counts and every writer's state) that `restore` goes on from."""
        self.flush()
        return {"stats": {split: dict(counts) for split, counts in self.stats.items()},
                "writers": {split: w.state() for split, w in self.writers.items()}}  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        """Go on from `state` (of a packer of the same splits); ShardStateError from a writer
        whose files do not match it."""
        for split, writer in self.writers.items():
            writer.restore(state["writers"][split])
        self.stats = {split: Counter(state["stats"][split]) for split in self.writers}
        self.bytes_added = sum(counts["bytes"] for counts in self.stats.values())

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


def pack_records(
    packer: Packer,
    records: Iterable[tuple[int, list[tuple[str, str]]]],
    every_bytes: int,
    save: Callable[[dict[str, Any]], None],
    done: int = 0,
) -> None:
    """Add the (split, text) pairs of every (position, pairs) record to `packer`. After each
    `every_bytes` of text, `save` the packer's state plus `records` (records added so far,
    counting the `done` added before these) and `position` (the last record's: where a
    resume goes on). A checkpoint falls between records and costs a flush and an fsync."""
    due = packer.bytes_added + every_bytes
    for position, pairs in records:
        for split, text in pairs:
            packer.add(split, text)
        done += 1
        if packer.bytes_added >= due:
            save({**packer.state(), "records": done, "position": position})
            due = packer.bytes_added + every_bytes


def open_packer(
    tok: Tokenizer, out: Path, shard_tokens: int, partial_prefix: str,
    at: dict[str, Any] | None = None, quiet: bool = True, group_chars: int = ENCODE_GROUP_CHARS,
) -> tuple[Packer, dict[str, Any] | None]:  # fmt: skip
    """A packer of the train and val shards in `out`, gone back to checkpoint state `at`
    when given. When the shards on disk do not match `at` the split folders are emptied and
    the packer starts afresh (state None): never a mix of two runs' bytes."""
    dtype = shard_dtype(tok.vocab_size)

    def new() -> Packer:
        return Packer(tok, {split: ShardWriter(out, split, dtype, shard_tokens, tok.eos_id,
                                               partial_prefix) for split in SPLITS},
                      group_chars=group_chars)  # fmt: skip

    if at is None:
        return new(), None
    packer = new()
    try:
        packer.restore(at)
        return packer, at
    except (ShardStateError, KeyError, TypeError, ValueError) as e:  # altered files or JSON
        if not quiet:
            print(f"{out}: the packing checkpoint does not match the shards ({e}); packing "
                  "again from the first document")  # fmt: skip
    for split in SPLITS:
        shutil.rmtree(out / split)
    for path in out.glob(partial_prefix + "*"):
        path.unlink()
    return new(), None
