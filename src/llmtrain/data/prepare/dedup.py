"""Exact deduplication: keep the first document with a given normalised text.

Each kept text leaves a 16-byte blake2b digest in an on-disk SQLite table (a B-tree keyed by
the digest, looked up and inserted in one statement), so memory stays at SQLite's page cache
(`CACHE_MIB`) whatever the corpus size; the table takes ~40 bytes of disk per document.
`checkpoint(generation)` commits what was added so far together with that number; a crash
loses only what came after it, `resume=True` reopens the committed table (SQLite's
write-ahead log drops the rest) and `committed_generation` says which checkpoint it matches.
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

    `path=None` gives SQLite's private temporary database (deleted when closed). A new set
    replaces any file at `path`; `resume=True` keeps its committed digests instead.
    """

    def __init__(self, path: Path | None = None, resume: bool = False) -> None:
        if path is not None and not resume:
            for stale in (path, *_side_files(path)):
                stale.unlink(missing_ok=True)
        self.path = path
        self._db = sqlite3.connect("" if path is None else str(path), isolation_level=None)
        # WAL: a commit is an append, and a crash leaves the last commit intact (no fsync:
        # this survives a killed process, not a power cut)
        for pragma in ("journal_mode=WAL", "synchronous=OFF", f"cache_size=-{CACHE_MIB * 1024}"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute("CREATE TABLE IF NOT EXISTS seen (digest BLOB PRIMARY KEY) WITHOUT ROWID")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER)")
        self._db.execute("BEGIN")  # one transaction per checkpoint: no commit per document
        self._insert = self._db.cursor()

    def add(self, digest: bytes) -> bool:
        self._insert.execute("INSERT OR IGNORE INTO seen VALUES (?)", (digest,))
        return self._insert.rowcount == 1

    def checkpoint(self, generation: int) -> None:
        """Commit the digests added so far, and `generation` with them (one transaction)."""
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('generation', ?)", (generation,))
        self._db.execute("COMMIT")
        self._db.execute("BEGIN")

    def close(self, remove: bool = True) -> None:
        """Close the table; delete its files unless `remove` is False (kept for a resume)."""
        self._db.close()
        if self.path is not None and remove:
            for path in (self.path, *_side_files(self.path)):
                path.unlink(missing_ok=True)


def committed_generation(path: Path) -> int:
    """The generation last committed with the digests at `path`; 0 when there is none."""
    if not path.is_file():
        return 0
    db = sqlite3.connect(str(path))
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
    except sqlite3.OperationalError:  # no meta table: nothing was committed
        row = None
    finally:
        db.close()
    return int(row[0]) if row else 0


def _side_files(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


class ExactDedup(Step):
    """Drop a document whose exact text was already seen (reason `exact_duplicate`).

    The digests live in a `DigestSet` at `path` (a temporary database when None); `close()`
    removes it.
    """

    name = "exact_dedup"

    def __init__(self, path: Path | None = None, resume: bool = False) -> None:
        super().__init__()
        self._seen = DigestSet(path, resume)

    def process(self, doc: Document) -> Document | None:
        if not self._seen.add(text_digest(doc.text)):
            self.drop("exact_duplicate")
            return None
        return doc

    def checkpoint(self, generation: int) -> None:
        self._seen.checkpoint(generation)

    def close(self, remove: bool = True) -> None:
        self._seen.close(remove)
