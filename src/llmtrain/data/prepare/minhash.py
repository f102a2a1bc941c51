"""Near-duplicate removal: MinHash signatures + LSH bands + union-find clusters.

Shingles are word 5-grams for spaced scripts and character 5-grams for CJK (see `textstats`),
hashed to uint64 without a Python loop per word. A signature is the minimum of 112 64-bit
multiply-add hashes (high 32 bits kept) over the shingles, computed for many documents in one
numpy pass; 14 bands × 8 rows (FineWeb's setting) give each document 14 bucket keys.

`NearDedup` appends each band's keys to its own file on disk (8 bytes per document per band),
so memory stays bounded by one band (16 bytes per document while it is sorted) plus the
union-find parents (8 bytes per document); `finish()` returns the documents to drop: every
member of a cluster but the first.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from llmtrain.data.prepare.documents import Document, Step
from llmtrain.data.prepare.textstats import CJK_CLASS, ngram_keys, script_of

NUM_BANDS, ROWS = 14, 8
NUM_HASHES = NUM_BANDS * ROWS
SHINGLE_WORDS = 5
SHINGLE_CHARS = 5
_BATCH_SHINGLES = 4096  # shingles hashed at once: 4k x 112 x 8 B = 3.7 MB of scratch
_NON_WORD = re.compile(r"[\W_]+")
_NON_CJK = re.compile(rf"[^{CJK_CLASS}]+")
_MAX_WORD = 64  # characters of a word that feed its hash (longer words: the first 64)

_rng = np.random.default_rng(0x5EED)
_CHAR_MULT = _rng.integers(1, 2**63, _MAX_WORD, dtype=np.uint64) | np.uint64(1)
_HASH_A = _rng.integers(1, 2**63, NUM_HASHES, dtype=np.uint64) | np.uint64(1)
_HASH_B = _rng.integers(0, 2**63, NUM_HASHES, dtype=np.uint64)
_BAND_MULT = _rng.integers(1, 2**63, ROWS, dtype=np.uint64) | np.uint64(1)


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype="<u4")


def word_hashes(text: str) -> np.ndarray:
    """One uint64 per word of the lower-cased text with punctuation removed (vectorised)."""
    simple = _NON_WORD.sub(" ", text.lower()).strip()
    if not simple:
        return np.empty(0, dtype=np.uint64)
    cp = _code_points(simple)
    is_space = cp == 32
    word_of = np.cumsum(is_space)[~is_space]  # word index of every non-space character
    chars = cp[~is_space].astype(np.uint64)
    starts = np.flatnonzero(np.r_[True, word_of[1:] != word_of[:-1]])
    offset = np.arange(len(chars)) - np.repeat(starts, np.diff(np.r_[starts, len(chars)]))
    weighted = chars * _CHAR_MULT[np.minimum(offset, _MAX_WORD - 1)]
    weighted[offset >= _MAX_WORD] = 0
    return np.add.reduceat(weighted, starts)


def shingles(text: str, script: str | None = None) -> np.ndarray:
    """uint64 shingle hashes: word 5-grams (spaced scripts) or character 5-grams (CJK)."""
    if (script or script_of(text)) == "cjk":
        units = _code_points(_NON_CJK.sub("", text)).astype(np.uint64)
        n = SHINGLE_CHARS
    else:
        units, n = word_hashes(text), SHINGLE_WORDS
    if len(units) == 0:
        return units
    return ngram_keys(units, min(n, len(units)))


def signatures(shingle_sets: list[np.ndarray]) -> np.ndarray:
    """(documents, 112) uint32 MinHash signatures; an empty set gets all 0xFFFFFFFF.

    Hash k of shingle x is the high half of `a_k * x + b_k` (mod 2**64); the minimum of the
    high halves is the high half of the minimum, so the shift runs once per document. The
    (112, shingles) scratch block is kept small (~4k shingles) so it stays in cache.
    """
    out = np.full((len(shingle_sets), NUM_HASHES), 0xFFFFFFFF, dtype=np.uint32)
    rows = [k for k, s in enumerate(shingle_sets) if len(s)]
    if not rows:
        return out
    flat = np.concatenate([shingle_sets[k] for k in rows])
    starts = np.cumsum([0] + [len(shingle_sets[k]) for k in rows[:-1]])
    mins = np.full((NUM_HASHES, len(rows)), np.iinfo(np.uint64).max, dtype=np.uint64)
    for lo in range(0, len(flat), _BATCH_SHINGLES):
        hi = min(lo + _BATCH_SHINGLES, len(flat))
        block = np.multiply.outer(_HASH_A, flat[lo:hi])  # (112, shingles), wrapping
        block += _HASH_B[:, None]
        # documents overlapping [lo, hi): reduce each one's slice of the block
        first = int(np.searchsorted(starts, lo, side="right")) - 1
        last = int(np.searchsorted(starts, hi, side="left"))
        cuts = np.maximum(starts[first:last], lo) - lo
        np.minimum(
            mins[:, first:last], np.minimum.reduceat(block, cuts, axis=1), out=mins[:, first:last]
        )
    out[rows] = (mins >> np.uint64(32)).astype(np.uint32).T
    return out


def band_keys(sigs: np.ndarray) -> np.ndarray:
    """(documents, 14) uint64 bucket keys, one per band of 8 signature rows."""
    bands = sigs.reshape(len(sigs), NUM_BANDS, ROWS).astype(np.uint64)
    return (bands * _BAND_MULT).sum(axis=2, dtype=np.uint64)


def _find(parent: np.ndarray, i: int) -> int:
    root = i
    while parent[root] != root:
        root = int(parent[root])
    while parent[i] != root:  # path compression
        parent[i], i = root, int(parent[i])
    return root


def duplicate_mask(band_files: list[Path], n_docs: int) -> tuple[np.ndarray, int]:
    """(mask, clusters): True for documents whose cluster (documents linked by a shared band
    key) has an earlier member, and how many clusters have more than one member."""
    parent = np.arange(n_docs, dtype=np.int64)
    for path in band_files:
        keys = np.fromfile(path, dtype=np.uint64)
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        same = np.flatnonzero(ordered[1:] == ordered[:-1])  # order[k+1] joins order[k]
        for k in same:
            a, b = _find(parent, int(order[k])), _find(parent, int(order[k + 1]))
            if a != b:
                parent[max(a, b)] = min(a, b)  # the earliest document stays the root
    mask = parent != np.arange(n_docs)
    roots = {_find(parent, int(i)) for i in np.flatnonzero(mask)}
    return mask, len(roots)


class NearDedup(Step):
    """Index every document's LSH band keys on disk; `finish()` says which ones to drop.

    Documents pass through `process` unchanged (their fate needs the whole corpus); the
    pipeline drops the returned indexes afterwards. Keys are buffered `batch` docs at a time.
    """

    name = "near_dedup"

    def __init__(self, work_dir: Path, batch: int = 256) -> None:
        super().__init__()
        work_dir.mkdir(parents=True, exist_ok=True)
        self.band_files = [work_dir / f"band_{b:02d}.u64" for b in range(NUM_BANDS)]
        self._files = [open(p, "wb") for p in self.band_files]  # noqa: SIM115 (closed in finish)
        self._pending: list[np.ndarray] = []
        self.batch = batch
        self.n_docs = 0

    def process(self, doc: Document) -> Document:
        self._pending.append(shingles(doc.text, doc.metadata.get("script")))
        self.n_docs += 1
        if len(self._pending) >= self.batch:
            self._flush()
        return doc

    def _flush(self) -> None:
        if self._pending:
            keys = band_keys(signatures(self._pending))
            for b, f in enumerate(self._files):
                keys[:, b].tofile(f)
            self._pending = []

    def finish(self) -> np.ndarray:
        """Boolean mask over the documents that passed: True = near duplicate, drop it."""
        self._flush()
        for f in self._files:
            f.close()
        mask, clusters = duplicate_mask(self.band_files, self.n_docs)
        removed = int(mask.sum())
        self.stats["removed_near_duplicate"] += removed
        self.stats["documents_out"] -= removed
        self.stats["duplicate_clusters"] = clusters
        for p in self.band_files:
            p.unlink(missing_ok=True)
        return mask
