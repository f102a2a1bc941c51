"""LSH on disk: bucket keys → candidate pairs → (verified) pairs → connected components.

`bucket_pairs` groups one band's keys with bounded memory: when the keys do not fit in
`budget` bytes they are hash-partitioned into files first, so equal keys meet in one part.
`verify_pairs` keeps the pairs whose MinHash signatures (a memory-mapped file) agree on at
least `threshold` of their rows, and `Components` joins pairs with vectorised union-find
(one int32 label per document, the only per-document array held in memory).
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

SORT_BUDGET = 64 << 20  # key + index + sort scratch bytes per part (~2x that at peak)
_BLOCK = 1 << 20  # keys read per block while partitioning
# pairs verified at once: they touch at most 2 x 16k pages of the signature file (128 MiB),
# which `release` then unmaps, so the file's pages never pile up in the process's RSS
_PAIR_BLOCK = 1 << 14


def _key_parts(path: Path, budget: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(keys, document indexes) groups of the uint64 keys in `path`; equal keys share a group.

    Indexes are ascending within a group (the position of the key in the file).
    """
    n = path.stat().st_size // 8
    parts = 1
    while n * 24 > budget * parts:  # key + index + argsort scratch per key
        parts *= 2
    if parts == 1:
        yield np.fromfile(path, dtype=np.uint64), np.arange(n, dtype=np.int64)
        return
    shift = np.uint64(64 - parts.bit_length() + 1)
    names = [path.with_name(f"{path.name}.part{p:05d}") for p in range(parts)]
    record = np.dtype([("key", "<u8"), ("index", "<i8")])
    outs = [open(name, "wb") for name in names]  # noqa: SIM115 (closed below)
    try:
        with open(path, "rb") as f:
            for start in range(0, n, _BLOCK):
                keys = np.fromfile(f, dtype=np.uint64, count=_BLOCK)
                part = (keys >> shift).astype(np.int64)
                order = np.argsort(part, kind="stable")
                recs = np.empty(len(keys), dtype=record)
                recs["key"], recs["index"] = keys[order], start + order
                bounds = np.searchsorted(part[order], np.arange(parts + 1))
                for p in np.flatnonzero(np.diff(bounds)):
                    recs[bounds[p] : bounds[p + 1]].tofile(outs[p])
    finally:
        for out in outs:
            out.close()
    for name in names:
        recs = np.fromfile(name, dtype=record)
        name.unlink()
        yield recs["key"], recs["index"]


def bucket_pairs(path: Path, budget: int = SORT_BUDGET) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(a, b) index pairs, a < b, of documents sharing a key in the uint64 key file `path`.

    Each bucket's later members pair with its first (earliest) member and with the member
    just before them, so a bucket of k documents gives < 2k pairs, not k²/2.
    """
    for keys, index in _key_parts(path, budget):
        order = np.argsort(keys, kind="stable")  # equal keys keep ascending document order
        keys, index = keys[order], index[order]
        later = np.flatnonzero(keys[1:] == keys[:-1]) + 1  # positions that are not run starts
        if not len(later):
            continue
        run_start = np.ones(len(keys), dtype=bool)
        run_start[later] = False
        first = index[np.flatnonzero(run_start)][np.cumsum(run_start) - 1]
        b, to_first, to_prev = index[later], first[later], index[later - 1]
        extra = to_prev != to_first
        yield np.r_[to_first, to_prev[extra]], np.r_[b, b[extra]]


def verify_pairs(
    a: np.ndarray, b: np.ndarray, sigs: np.ndarray, threshold: float,
    release: Callable[[], None] = lambda: None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The pairs whose signatures (rows of `sigs`, e.g. a memory map) agree on >= `threshold`;
    `release()` runs after each block (to unmap the pages it touched)."""
    if threshold <= 0 or not len(a):
        return a, b
    keep = np.empty(len(a), dtype=bool)
    for lo in range(0, len(a), _PAIR_BLOCK):
        hi = lo + _PAIR_BLOCK
        agree = (sigs[a[lo:hi]] == sigs[b[lo:hi]]).mean(axis=1)  # estimated Jaccard
        keep[lo:hi] = agree >= threshold
        release()
    return a[keep], b[keep]


class SignatureFile:
    """The (documents, rows) uint32 signatures in a file, memory-mapped read-only; `release()`
    drops the mapped pages from the process (they stay in the page cache)."""

    def __init__(self, path: Path, n_docs: int, rows: int) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 (closed in close)
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        self.sigs = np.frombuffer(self._map, dtype=np.uint32).reshape(n_docs, rows)

    def release(self) -> None:
        self._map.madvise(mmap.MADV_DONTNEED)

    def close(self) -> None:
        del self.sigs  # the array's buffer export must go before the map can close
        self._map.close()
        self._file.close()


class Components:
    """Union-find over `n` documents with vectorised unions; every root is a cluster's
    earliest document."""

    def __init__(self, n: int) -> None:
        dtype = np.int32 if n < 2**31 else np.int64
        self.label = np.arange(n, dtype=dtype)

    def _compress(self) -> None:
        while True:  # pointer jumping until every label is a root
            up = self.label[self.label]
            if np.array_equal(up, self.label):
                return
            self.label = up

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
        """(mask of documents with an earlier member in their cluster, number of clusters > 1)."""
        self._compress()
        mask = self.label != np.arange(len(self.label), dtype=self.label.dtype)
        return mask, len(np.unique(self.label[mask]))
