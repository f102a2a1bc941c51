"""Exact deduplication: keep the first document with a given normalised text.

Each kept text leaves a 16-byte blake2b digest in a set (about 16 bytes of payload, ~90 bytes
with Python's set overhead, per document), so 10 M documents need ~1 GB of RAM.
"""

from __future__ import annotations

import hashlib

from llmtrain.data.prepare.documents import Document, Step


def text_digest(text: str) -> bytes:
    """16-byte blake2b digest of the UTF-8 text."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class ExactDedup(Step):
    """Drop a document whose exact text was already seen (reason `exact_duplicate`)."""

    name = "exact_dedup"

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[bytes] = set()

    def process(self, doc: Document) -> Document | None:
        digest = text_digest(doc.text)
        if digest in self._seen:
            self.drop("exact_duplicate")
            return None
        self._seen.add(digest)
        return doc
