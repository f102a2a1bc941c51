"""Near-duplicate removal: MinHash signatures + LSH bands + verified union-find clusters.

Shingles are word 5-grams for spaced scripts and character 5-grams for CJK (see `textstats`),
hashed to uint64 without a Python loop per word. A signature is the minimum of 112 64-bit
multiply-add hashes (high 32 bits kept) over the shingles, computed for many documents in one
numpy pass. An `LSHConfig` splits the 112 rows into bands (one bucket key each) and may
confirm each candidate pair on its full signature (`LSH_PRESETS`; default "recall").

`NearDedup` appends each band's keys to its own file on disk (8 bytes per document per band)
and the signatures to another (448 bytes per document, read back a block of pairs at a time
when verifying); buckets are sorted a bounded part at a time (`lsh.cluster_bands`), so
memory holds one int32 cluster label per document plus fixed buffers. `finish()` returns
the documents to drop (a 1-byte mask): every member of a cluster but the first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmtrain.data.prepare.documents import Document, Step
from llmtrain.data.prepare.lsh import SORT_BUDGET, cluster_bands
from llmtrain.data.prepare.textstats import CJK_CLASS, ngram_keys, script_of
from llmtrain.errors import ConfigError

NUM_HASHES = 112  # signature rows; every preset splits them into bands
NUM_BANDS, ROWS = 14, 8  # FineWeb's banding (the "fineweb" preset)
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
_BAND_MULT = _rng.integers(1, 2**63, NUM_HASHES, dtype=np.uint64) | np.uint64(1)


@dataclass(frozen=True)
class LSHConfig:
    """How the 112 signature rows become buckets, and how candidates are confirmed.

    Two documents with Jaccard similarity J share a band with probability
    1 - (1 - J**rows)**bands; with `threshold` > 0 a candidate pair counts only when the
    full signatures agree on at least that share of rows (an estimate of J, ±0.05).
    """

    bands: int
    rows: int
    threshold: float = 0.0  # 0: every pair sharing a band is a duplicate (FineWeb)

    def validate(self) -> None:
        if self.bands < 1 or self.rows < 1 or self.bands * self.rows > NUM_HASHES:
            raise ConfigError(
                f"near-dedup bands x rows = {self.bands} x {self.rows} must be positive and use "
                f"at most the {NUM_HASHES} signature rows (e.g. 28 x 4 or 14 x 8)"
            )
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(
                f"near-dedup threshold = {self.threshold} must be in [0, 1] (0.5: half the "
                "signature rows agree; 0 skips the check)"
            )


# "recall" (default): 28 short bands find pairs down to Jaccard ~0.45 and the signature check
# drops those below 0.5. On planted copies with 5 % of the words (English) or characters
# (Chinese) substituted, inserted or deleted (Jaccard ~0.6), bench/prepare_filters.py
# measured recall 99 % against 37 % for FineWeb's 14 x 8 (whose S-curve sits at J ~0.72),
# with the same 112 hashes (the same signature cost) and no more false positives.
LSH_PRESETS = {
    "recall": LSHConfig(bands=28, rows=4, threshold=0.5),
    "fineweb": LSHConfig(bands=NUM_BANDS, rows=ROWS, threshold=0.0),
}
DEFAULT_LSH = "recall"


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


def band_keys(sigs: np.ndarray, bands: int = NUM_BANDS, rows: int = ROWS) -> np.ndarray:
    """(documents, bands) uint64 bucket keys, one per band of `rows` signature rows."""
    used = sigs[:, : bands * rows].reshape(len(sigs), bands, rows).astype(np.uint64)
    return (used * _BAND_MULT[:rows]).sum(axis=2, dtype=np.uint64)


class NearDedup(Step):
    """Index every document's LSH band keys (and signature) on disk; `finish()` says which
    ones to drop.

    Documents pass through `process` unchanged (their fate needs the whole corpus); the
    pipeline drops the returned indexes afterwards. Keys are buffered `batch` docs at a time.
    """

    name = "near_dedup"

    def __init__(
        self, work_dir: Path, lsh: LSHConfig | None = None, batch: int = 256,
        sort_budget: int = SORT_BUDGET, resume_docs: int = 0,
    ) -> None:  # fmt: skip
        """`resume_docs` > 0 goes on from a checkpoint that had indexed that many documents
        (the files are cut back to them)."""
        super().__init__()
        self.lsh = lsh or LSH_PRESETS[DEFAULT_LSH]
        self.lsh.validate()
        work_dir.mkdir(parents=True, exist_ok=True)
        self.band_files = [work_dir / f"band_{b:02d}.u64" for b in range(self.lsh.bands)]
        self.sig_file = work_dir / "band_signatures.u32"
        sizes = [8] * len(self.band_files) + [4 * NUM_HASHES * (self.lsh.threshold > 0)]
        self._files = []
        for path, size in zip([*self.band_files, self.sig_file], sizes):
            f = open(path, "r+b" if resume_docs else "wb")  # noqa: SIM115 (closed in finish)
            f.truncate(resume_docs * size)
            f.seek(resume_docs * size)
            self._files.append(f)
        self._pending: list[np.ndarray] = []
        self.batch, self.sort_budget = batch, sort_budget
        self.n_docs = resume_docs

    def process(self, doc: Document) -> Document:
        self._pending.append(shingles(doc.text, doc.metadata.get("script")))
        self.n_docs += 1
        if len(self._pending) >= self.batch:
            self._flush()
        return doc

    def _flush(self) -> None:
        if self._pending:
            sigs = signatures(self._pending)
            keys = band_keys(sigs, self.lsh.bands, self.lsh.rows)
            for b, f in enumerate(self._files[:-1]):
                keys[:, b].tofile(f)
            if self.lsh.threshold > 0:
                sigs.tofile(self._files[-1])
            self._pending = []

    def checkpoint(self, generation: int) -> None:
        self._flush()
        for f in self._files:
            f.flush()

    def close(self, remove: bool = True) -> None:
        for f in self._files:
            f.close()
        if remove:
            for p in [*self.band_files, self.sig_file]:
                p.unlink(missing_ok=True)

    def finish(self, on_band: Callable[[], None] = lambda: None) -> np.ndarray:
        """Boolean mask over the documents that passed: True = near duplicate, drop it.

        `on_band` is called after each band is clustered (a progress bar's `advance`). The
        band files stay until `close()`, so a crash here can cluster again on resume."""
        self._flush()
        for f in self._files:
            f.close()
        verify = self.lsh.threshold > 0 and self.n_docs > 0
        found = cluster_bands(
            self.band_files, self.n_docs, self.sig_file if verify else None, NUM_HASHES,
            self.lsh.threshold, self.sort_budget, on_band,
        )  # fmt: skip
        removed = int(found.mask.sum())
        self.stats["candidate_pairs"] += found.candidate_pairs
        self.stats["removed_near_duplicate"] += removed
        self.stats["documents_out"] -= removed
        self.stats["duplicate_clusters"] = found.clusters
        return found.mask
