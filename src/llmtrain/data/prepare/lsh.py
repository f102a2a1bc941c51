"""LSH on disk: bucket keys → candidate pairs → (verified) pairs → connected components.

`bucket_pairs` groups one band's keys with bounded memory: when the keys do not fit in
`budget` bytes they are hash-partitioned into files first, so equal keys meet in one part.
`verify_pairs` keeps the pairs whose MinHash signatures (rows read from a `SignatureFile`)
agree on at least `threshold` of their rows, and `Components` joins pairs with vectorised
union-find (one int32 label per document, the only per-document array held in memory).
`cluster_bands` runs the three over every band file. Its peak is fixed scratch (one part's
sort, `SORT_BUDGET`; one block of signature rows, 14 MiB) + 5 bytes a document; measured
~73 MiB above the interpreter at 3.0 M documents, 12 MiB of it labels (test_lsh checks it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmtrain.data.prepare.heap import release_free_memory

SORT_BUDGET = 64 << 20  # peak bytes of one part's sort (keys, indexes and their scratch)
_BYTES_PER_KEY = 64  # measured peak of `bucket_pairs` per key: key, index, order, run arrays
_BLOCK = 1 << 18  # keys read per block while partitioning (~16 MiB of scratch)
# pairs verified at once: their signature rows (<= 2 x 16k x 448 B = 14 MiB) are read into
# memory together (a memory map would map whole page-cache folios around every row and
# grow the RSS towards the file's size), then compared 4k pairs at a time
_PAIR_BLOCK = 1 << 14
_COMPARE_BLOCK = 1 << 12
_LABEL_BLOCK = 1 << 20  # labels compressed / compared at once (4 MiB of int32 scratch)
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _key_parts(path: Path, budget: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(keys, document indexes) groups of the uint64 keys in `path`; equal keys share a group.

    Indexes are ascending within a group (the position of the key in the file).
    """
    n = path.stat().st_size // 8
    parts = 1
    while n * _BYTES_PER_KEY > budget * parts:
        parts *= 2
    if parts == 1:
        yield np.fromfile(path, dtype=np.uint64), np.arange(n, dtype=np.int64)
        return
    names = [path.with_name(f"{path.name}.part{p:05d}") for p in range(parts)]
    _partition(path, n, names)
    for name in names:
        yield _read_part(name)  # (no local keeps a part alive between yields)


_RECORD = np.dtype([("key", "<u8"), ("index", "<i8")])


def _partition(path: Path, n: int, names: list[Path]) -> None:
    """Append every (key, index) of `path` to the part file its key's top bits pick, a block
    of `_BLOCK` keys at a time (its scratch is freed when this returns)."""
    parts = len(names)
    shift = np.uint64(64 - parts.bit_length() + 1)
    outs = [open(name, "wb") for name in names]  # noqa: SIM115 (closed below)
    try:
        with open(path, "rb") as f:
            for start in range(0, n, _BLOCK):
                keys = np.fromfile(f, dtype=np.uint64, count=_BLOCK)
                part = (keys >> shift).astype(np.int64)
                order = np.argsort(part, kind="stable")
                recs = np.empty(len(keys), dtype=_RECORD)
                recs["key"], recs["index"] = keys[order], start + order
                bounds = np.searchsorted(part[order], np.arange(parts + 1))
                for p in np.flatnonzero(np.diff(bounds)):
                    recs[bounds[p] : bounds[p + 1]].tofile(outs[p])
    finally:
        for out in outs:
            out.close()


def _read_part(name: Path) -> tuple[np.ndarray, np.ndarray]:
    recs = np.fromfile(name, dtype=_RECORD)
    name.unlink()
    return recs["key"], recs["index"]


def bucket_pairs(path: Path, budget: int = SORT_BUDGET) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(a, b) index pairs, a < b, of documents sharing a key in the uint64 key file `path`.

    Each bucket's later members pair with its first (earliest) member and with the member
    just before them, so a bucket of k documents gives < 2k pairs, not k²/2. Only the pairs
    stay alive between yields: a part's sort arrays are freed before its pairs go out.
    """
    for part in _key_parts(path, budget):
        pairs = _part_pairs(*part)
        del part  # the part's keys and indexes, while the caller works on its pairs
        if len(pairs[0]):
            yield pairs


def _part_pairs(keys: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(keys, kind="stable")  # equal keys keep ascending document order
    keys, index = keys[order], index[order]
    del order
    later = np.flatnonzero(keys[1:] == keys[:-1]) + 1  # positions that are not run starts
    del keys
    run_start = np.ones(len(index), dtype=bool)
    run_start[later] = False
    first = index[np.flatnonzero(run_start)][np.cumsum(run_start) - 1]
    b, to_first, to_prev = index[later], first[later], index[later - 1]
    extra = to_prev != to_first
    return np.r_[to_first, to_prev[extra]], np.r_[b, b[extra]]


def verify_pairs(
    a: np.ndarray, b: np.ndarray, rows: Callable[[np.ndarray], np.ndarray] | np.ndarray,
    threshold: float,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The pairs whose signatures agree on >= `threshold` of their rows (estimated Jaccard).

    `rows(indexes)` returns the signatures of the (sorted, unique) documents asked for, e.g.
    `SignatureFile.rows`; an in-memory (documents, rows) array works too.
    """
    if threshold <= 0 or not len(a):
        return a, b
    if isinstance(rows, np.ndarray):
        rows = rows.__getitem__
    keep = np.empty(len(a), dtype=bool)
    for lo in range(0, len(a), _PAIR_BLOCK):
        hi = min(lo + _PAIR_BLOCK, len(a))
        docs, where = np.unique(np.r_[a[lo:hi], b[lo:hi]], return_inverse=True)
        sigs = rows(docs)  # (unique documents, rows)
        wa, wb = where[: hi - lo], where[hi - lo :]
        for c in range(0, hi - lo, _COMPARE_BLOCK):
            same = sigs[wa[c : c + _COMPARE_BLOCK]] == sigs[wb[c : c + _COMPARE_BLOCK]]
            keep[lo + c : lo + c + len(same)] = same.mean(axis=1) >= threshold
    return a[keep], b[keep]


class SignatureFile:
    """The (documents, rows) uint32 signatures in a file; `rows(indexes)` reads some of them.

    Rows are read with one `preadv` each straight into the returned array, in file order
    (~1.2 us a row from the page cache), so memory holds only the rows asked for.
    """

    def __init__(self, path: Path, n_docs: int, rows: int) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self.n_docs, self.width = n_docs, rows
        self._row_bytes = rows * 4

    def rows(self, indexes: np.ndarray) -> np.ndarray:
        size, fd = self._row_bytes, self._fd
        out = np.empty((len(indexes), self.width), dtype="<u4")
        view = memoryview(out).cast("B")
        for k, i in enumerate(indexes.tolist()):
            if os.preadv(fd, [view[k * size : (k + 1) * size]], i * size) != size:
                raise EOFError(f"signature row {i} is past the end of the signature file")
        return out

    def close(self) -> None:
        os.close(self._fd)


class Components:
    """Union-find over `n` documents with vectorised unions; every root is a cluster's
    earliest document. Memory: one int32 label per document (int64 past 2**31 documents);
    every full pass works a block of `_LABEL_BLOCK` labels at a time."""

    def __init__(self, n: int) -> None:
        dtype = np.int32 if n < 2**31 else np.int64
        self.label = np.arange(n, dtype=dtype)

    def _compress(self) -> None:
        """Pointer jumping, in place, until every label is a root (labels only ever move to
        an ancestor, so updating a block at a time stays correct)."""
        changed = True
        while changed:
            changed = False
            for lo in range(0, len(self.label), _LABEL_BLOCK):
                block = self.label[lo : lo + _LABEL_BLOCK]
                up = self.label[block]
                if not np.array_equal(up, block):
                    block[...] = up
                    changed = True

    def union(self, a: np.ndarray, b: np.ndarray) -> None:
        """Join documents a[i] and b[i] for every i."""
        while len(a):
            self._compress()
            ra, rb = self.label[a], self.label[b]
            apart = ra != rb
            a, b, ra, rb = a[apart], b[apart], ra[apart], rb[apart]
            # a root pointed at several smaller roots keeps the smallest; the loop
            # re-checks the rest until every pair shares a root
            np.minimum.at(self.label, np.maximum(ra, rb), np.minimum(ra, rb))

    def duplicates(self) -> tuple[np.ndarray, int]:
        """(mask of documents with an earlier member in their cluster, number of clusters > 1).

        Besides the mask (1 byte a document) it needs one bit per document for the roots."""
        self._compress()
        n = len(self.label)
        mask = np.empty(n, dtype=bool)
        roots = np.zeros((n + 7) // 8, dtype=np.uint8)  # bit r: root r has a duplicate
        for lo in range(0, n, _LABEL_BLOCK):
            block = self.label[lo : lo + _LABEL_BLOCK]
            dup = block != np.arange(lo, lo + len(block), dtype=block.dtype)
            mask[lo : lo + len(block)] = dup
            r = block[dup]
            np.bitwise_or.at(roots, r >> 3, (1 << (r & 7)).astype(np.uint8))
        clusters = sum(int(_POPCOUNT[roots[lo : lo + _LABEL_BLOCK]].sum(dtype=np.int64))
                       for lo in range(0, len(roots), _LABEL_BLOCK))  # fmt: skip
        return mask, clusters


@dataclass
class Found:
    """What `cluster_bands` found: the near-duplicate mask (True = drop; every member of a
    cluster but its earliest), the number of clusters with duplicates and the pairs that
    shared a band (before the signature check)."""

    mask: np.ndarray
    clusters: int
    candidate_pairs: int


def cluster_bands(
    band_files: list[Path], n_docs: int, sig_file: Path | None = None, width: int = 0,
    threshold: float = 0.0, budget: int = SORT_BUDGET, on_band: Callable[[], None] = lambda: None,
) -> Found:  # fmt: skip
    """Join the documents that share a key in any band file (uint64 per document) into
    clusters; with `sig_file` ((n_docs, width) uint32) only pairs agreeing on >= `threshold`
    of their rows join. Calls `on_band()` after each band.

    Peak memory: one part's sort (`budget`), 16k pairs' signature rows, and 5 bytes a
    document (int32 labels + the 1-byte mask, while the mask is made); the C heap is
    trimmed before and after every band so nothing freed stays resident.
    """
    release_free_memory()  # what earlier steps freed (SQLite's page cache, ...)
    sigs = SignatureFile(sig_file, n_docs, width) if sig_file is not None else None
    clusters, candidates = Components(n_docs), 0
    try:
        for path in band_files:
            for a, b in bucket_pairs(path, budget):
                candidates += len(a)
                if sigs is not None:
                    a, b = verify_pairs(a, b, sigs.rows, threshold)
                clusters.union(a, b)
                del a, b
            release_free_memory()  # the band's sort arrays: the next band reuses the pages
            on_band()
    finally:
        if sigs is not None:
            sigs.close()
    mask, n_clusters = clusters.duplicates()
    return Found(mask, n_clusters, candidates)
