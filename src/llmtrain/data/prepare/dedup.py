"""Exact deduplication: keep the first document with a given normalised text.

Each kept text leaves a 16-byte blake2b digest in an on-disk SQLite table (a B-tree keyed by
the digest, looked up and inserted in one statement), so memory stays at SQLite's page cache
(`CACHE_MIB`) whatever the corpus size; the table takes ~40 bytes of disk per document.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from llmtrain.data.prepare.documents import Document, Step

CACHE_MIB = 64


def text_digest(text: str) -> bytes:
    """16-byte blake2b digest of the UTF-8 text."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class DigestSet:
    """A set of digests on disk: `add(d)` is True when `d` was not there yet.

    `path=None` gives SQLite's private temporary database (deleted when closed).
    """

    def __init__(self, path: Path | None = None) -> None:
        if path is not None:
            path.unlink(missing_ok=True)
        self.path = path
        self._db = sqlite3.connect("" if path is None else str(path), isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", f"cache_size=-{CACHE_MIB * 1024}"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute("CREATE TABLE seen (digest BLOB PRIMARY KEY) WITHOUT ROWID")
        self._db.execute("BEGIN")  # one transaction: no commit per document
        self._insert = self._db.cursor()

    def add(self, digest: bytes) -> bool:
        self._insert.execute("INSERT OR IGNORE INTO seen VALUES (?)", (digest,))
        return self._insert.rowcount == 1

    def close(self) -> None:
        self._db.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class ExactDedup(Step):
    """Drop a document whose exact text was already seen (reason `exact_duplicate`).

    The digests live in a `DigestSet` at `path` (a temporary database when None); `close()`
    removes it.
    """

    name = "exact_dedup"

    def __init__(self, path: Path | None = None) -> None:
        super().__init__()
        self._seen = DigestSet(path)

    def process(self, doc: Document) -> Document | None:
        if not self._seen.add(text_digest(doc.text)):
            self.drop("exact_duplicate")
            return None
        return doc

    def close(self) -> None:
        self._seen.close()
