"""LSH on disk: bounded-memory bucket grouping, signature checks, vectorised union-find."""

from __future__ import annotations

import random
import tracemalloc

import numpy as np
import pytest

from llmtrain.data.prepare import Document, lsh
from llmtrain.data.prepare.config import PrepareConfig
from llmtrain.data.prepare.lsh import (
    Components,
    SignatureFile,
    bucket_pairs,
    cluster_bands,
    verify_pairs,
)
from llmtrain.data.prepare.minhash import LSH_PRESETS, LSHConfig, NearDedup
from llmtrain.errors import ConfigError


def _naive_components(n: int, pairs: list[tuple[int, int]]) -> list[int]:
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for a, b in pairs:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    return [find(i) for i in range(n)]


def test_components_match_naive_union_find():
    rng = np.random.default_rng(0)
    n = 300
    a, b = rng.integers(0, n, 250), rng.integers(0, n, 250)
    comps = Components(n)
    comps.union(a[:120], b[:120])
    comps.union(a[120:], b[120:])
    mask, clusters = comps.duplicates()
    roots = _naive_components(n, list(zip(a.tolist(), b.tolist())))
    assert comps.label.tolist() == roots
    assert mask.tolist() == [r != i for i, r in enumerate(roots)]
    assert clusters == len({r for i, r in enumerate(roots) if r != i})


def test_components_work_a_block_of_labels_at_a_time(monkeypatch):
    monkeypatch.setattr(lsh, "_LABEL_BLOCK", 7)  # many blocks: in-place jumps across them
    rng = np.random.default_rng(4)
    n = 200
    a, b = rng.integers(0, n, 150), rng.integers(0, n, 150)
    comps = Components(n)
    comps.union(a, b)
    mask, clusters = comps.duplicates()
    roots = _naive_components(n, list(zip(a.tolist(), b.tolist())))
    assert comps.label.tolist() == roots
    assert mask.tolist() == [r != i for i, r in enumerate(roots)]
    assert clusters == len({r for i, r in enumerate(roots) if r != i}) > 1


def test_signature_file_reads_the_rows_asked_for(tmp_path, monkeypatch):
    sigs = np.random.default_rng(5).integers(0, 4, (50, 6), dtype=np.uint32)
    sigs.tofile(tmp_path / "s.u32")
    f = SignatureFile(tmp_path / "s.u32", 50, 6)
    assert (f.rows(np.array([3, 7, 49])) == sigs[[3, 7, 49]]).all()
    a, b = np.array([0, 1, 2, 3, 4]), np.array([10, 20, 30, 40, 49])
    monkeypatch.setattr(lsh, "_PAIR_BLOCK", 2)  # several blocks, rows shared within one
    monkeypatch.setattr(lsh, "_COMPARE_BLOCK", 1)  # ... compared a pair at a time
    assert [x.tolist() for x in verify_pairs(a, b, f.rows, 0.3)] == [
        x.tolist() for x in verify_pairs(a, b, sigs, 0.3)
    ]
    f.close()


def _pairs(path, budget):
    out = set()
    for a, b in bucket_pairs(path, budget):
        assert (a < b).all()
        out |= set(zip(a.tolist(), b.tolist()))
    return out


def test_bucket_pairs_same_when_partitioned_on_disk(tmp_path):
    keys = np.random.default_rng(1).integers(0, 40, 5000).astype(np.uint64) * np.uint64(
        0x9E3779B97F4A7C15
    )  # 40 buckets spread over the 64-bit range
    path = tmp_path / "band.u64"
    keys.tofile(path)
    in_memory = _pairs(path, budget=1 << 30)
    partitioned = _pairs(path, budget=4096)  # forces 32+ part files
    assert in_memory == partitioned and len(in_memory) > 4000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["band.u64"]  # parts removed
    first = np.flatnonzero(keys == keys[0])
    assert {(int(first[0]), int(j)) for j in first[1:]} <= in_memory  # star to earliest


def test_verify_pairs_keeps_agreeing_signatures():
    sigs = np.zeros((3, 10), dtype=np.uint32)
    sigs[1, :4] = 7  # doc 1 agrees with doc 0 on 6 of 10 rows
    sigs[2, :6] = 9  # doc 2 on 4 of 10
    a, b = verify_pairs(np.array([0, 0]), np.array([1, 2]), sigs, 0.5)
    assert a.tolist() == [0] and b.tolist() == [1]


def _edited(words: list[str], rate: float, rng: random.Random) -> str:
    words = list(words)
    for i in rng.sample(range(len(words)), round(len(words) * rate)):
        words[i] = f"edit{i}"
    return " ".join(words)


@pytest.mark.parametrize("preset,found", [("recall", True), ("fineweb", False)])
def test_recall_preset_finds_copies_with_five_percent_edits(tmp_path, preset, found):
    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(20000)]
    docs = [[rng.choice(vocab) for _ in range(400)] for _ in range(30)]
    copies = [_edited(d, 0.05, rng) for d in docs[:10]]  # Jaccard of 5-grams ~0.6
    step = NearDedup(tmp_path / "nd", LSH_PRESETS[preset], batch=7)
    texts = [" ".join(d) for d in docs] + copies
    list(step(Document(text=t, id=str(i), source="t") for i, t in enumerate(texts)))
    mask = step.finish()
    assert not mask[:30].any()
    assert (mask[30:].mean() >= 0.9) if found else (mask[30:].mean() <= 0.5)


def test_lsh_config_errors_name_the_fix():
    with pytest.raises(ConfigError, match="28 x 4"):
        LSHConfig(bands=30, rows=4).validate()
    with pytest.raises(ConfigError, match="near_dedup_preset"):
        PrepareConfig(near_dedup_preset="strict").validate()
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        PrepareConfig(near_dedup_threshold=1.5).validate()
    assert PrepareConfig(near_dedup_threshold=0.7).lsh == LSHConfig(28, 4, 0.7)


def _planted_keys(n: int, seed: int) -> np.ndarray:
    """n uint64 keys: mostly distinct, every 5th document copies an earlier one's key."""
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 2**63, n, dtype=np.uint64)
    copies = np.arange(5, n, 5)
    keys[copies] = keys[rng.integers(0, copies)]
    return keys


@pytest.mark.parametrize("budget", [1 << 30, 1 << 20])  # in memory; 16+ parts on disk
def test_bucket_pairs_keeps_only_the_pairs_between_yields(tmp_path, budget):
    n = 100_000  # 1.6 MB of keys + indexes, 4 MB+ of sort scratch
    _planted_keys(n, 6).tofile(tmp_path / "band.u64")
    tracemalloc.start()
    try:
        for a, b in bucket_pairs(tmp_path / "band.u64", budget):
            live = tracemalloc.get_traced_memory()[0]
            assert live <= a.nbytes + b.nbytes + 64 * 1024, (live, len(a))
    finally:
        tracemalloc.stop()


def test_cluster_bands_matches_naive_and_its_memory_does_not_grow_with_the_corpus(tmp_path):
    """Peak (numpy, traced) memory of clustering is the sort budget + the signature block +
    5 bytes a document, whatever the number of documents or pairs."""
    n, width, budget = 200_000, 112, 2 << 20
    bands = []
    for k in range(2):
        bands.append(tmp_path / f"band_{k}.u64")
        _planted_keys(n, 7 + k).tofile(bands[-1])
    sig = tmp_path / "sig.u32"
    with open(sig, "wb") as f:  # sparse: every row reads as zeros, so every pair agrees
        f.truncate(n * width * 4)
    calls = []
    tracemalloc.start()
    try:
        found = cluster_bands(bands, n, sig, width, 0.5, budget, lambda: calls.append(1))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    rows = 2 * lsh._PAIR_BLOCK * width * 4  # one block of pairs' signature rows
    assert peak <= budget + rows + 5 * n + (4 << 20), peak / 2**20
    assert found.candidate_pairs > lsh._PAIR_BLOCK and len(calls) == 2
    pairs = [p for band in bands for p in _pairs(band, 1 << 30)]
    roots = _naive_components(n, pairs)
    assert found.mask.tolist() == [r != i for i, r in enumerate(roots)]
    assert found.clusters == len({r for i, r in enumerate(roots) if r != i})
