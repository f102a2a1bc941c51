"""Throughput per core of `prepare`'s cleaning steps and MinHash vs datatrove, on real text.

Measures (medians of --repeats runs, one process, one core): the Gopher quality + repetition
chain on English prose (NLTK state_union + movie_reviews), the full web chain (Gopher, C4,
FineWeb) on Chinese Wikipedia paragraphs, and MinHash signatures on the English prose; then
with --datatrove-site (or datatrove installed), datatrove's same filters and MinHash signatures
on the same documents, interleaved with ours, and the ratio; also the ratio to the issue's
reference figures (0.49 / 0.25 / 0.64 MB/s per core). Near-dedup quality: prepare_neardup.py.
Prints a table, then one JSON line. Run:
    flock /tmp/llmtrain-bench.lock .venv/bin/python bench/prepare_filters.py \
        --datatrove-site /tmp/dt-venv/lib/python3.11/site-packages
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from llmtrain.data.prepare import Document
from llmtrain.data.prepare.minhash import shingles, signatures
from llmtrain.data.prepare.quality import GopherQuality, GopherRepetition, quality_steps

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DATATROVE_MB_S = {"gopher_en": 0.49, "web_chain_zh": 0.25, "web_chain_zh_jieba": 0.25,
                  "minhash_en": 0.64}  # fmt: skip
SAME_DATATROVE_CASE = {"web_chain_zh_jieba": "web_chain_zh"}  # one datatrove zh chain


def english_prose() -> list[str]:
    texts = []
    for name in ("nltk-state_union.zip", "nltk-movie_reviews.zip"):
        with zipfile.ZipFile(DATA / "en_prose" / name) as z:
            texts += [z.read(n).decode("latin-1") for n in z.namelist() if n.endswith(".txt")]
    return texts


def chinese_wiki() -> list[str]:
    path = DATA / "zh_wiki" / "zh_wiki_contexts.jsonl"
    return [json.loads(line)["text"] for line in path.open(encoding="utf-8")]


def run_chain(steps_factory, texts: list[str]) -> float:
    docs = (Document(text=t, id=str(i), source="b") for i, t in enumerate(texts))
    t0 = time.perf_counter()
    for step in steps_factory():
        docs = step(docs)
    kept = sum(1 for _ in docs)
    assert kept > 0
    return time.perf_counter() - t0


def run_minhash(texts: list[str]) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(texts), 256):
        signatures([shingles(t) for t in texts[i : i + 256]])
    return time.perf_counter() - t0


def add_datatrove_site(site: str | None) -> bool:
    """Make datatrove importable from another venv's site-packages, put first so datatrove
    gets its own versions of packages not yet imported (xxhash...); numpy and llmtrain are
    already loaded from this venv. True when `import datatrove` then works."""
    if site:
        sys.path.insert(0, site)
    try:
        import datatrove  # noqa: F401
    except ImportError:
        return False
    return True


def datatrove_cases(en: list[str], zh: list[str]) -> dict:
    """The same three measurements with datatrove's filters and MinHash signatures."""
    from datatrove.data import Document as DTDocument
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.pipeline.filters import (
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    from datatrove.utils.hashing import HashConfig

    def chain(filters, texts):
        docs = (DTDocument(text=t, id=str(i)) for i, t in enumerate(texts))
        t0 = time.perf_counter()
        for f in filters():
            docs = f.run(docs)
        kept = sum(1 for _ in docs)
        assert kept > 0.5 * len(texts), kept  # the documents flow through every filter
        return time.perf_counter() - t0

    # FineWeb-2's cmn_Hani thresholds; spaCy + jieba words. The same work as our jieba chain,
    # whose alphabetic-word ratio counts characters instead (see quality._JIEBA_QUALITY).
    def zh_chain():
        lang = "cmn_Hani"
        return [
            GopherRepetitionFilter(
                dup_line_frac=0.287, top_n_grams=((2, 0.256), (3, 0.201), (4, 0.171)),
                dup_n_grams=((5, 0.198), (6, 0.182), (7, 0.167), (8, 0.154), (9, 0.14),
                             (10, 0.127)), language=lang),
            GopherQualityFilter(min_avg_word_length=1, max_avg_word_length=5,
                                max_non_alpha_words_ratio=0.735, language=lang,
                                stop_words=list("的年在月是和日了於·為有被人中为他與後也而由")),
            FineWebQualityFilter(line_punct_thr=0.106, new_line_ratio=0.178, language=lang),
        ]  # fmt: skip

    def minhash(texts):
        cfg = MinhashConfig(hash_config=HashConfig(precision=64))
        with tempfile.TemporaryDirectory() as tmp:
            step = MinhashDedupSignature(output_folder=tmp, config=cfg)
            docs = [DTDocument(text=t, id=str(i)) for i, t in enumerate(texts)]
            t0 = time.perf_counter()
            step.run(iter(docs))
            return time.perf_counter() - t0

    return {
        "gopher_en": lambda: chain(lambda: [GopherRepetitionFilter(), GopherQualityFilter()], en),
        "web_chain_zh": lambda: chain(zh_chain, zh),
        "minhash_en": lambda: minhash(en),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--datatrove-site",
        help="site-packages of a venv with datatrove (+ spacy, jieba), e.g. "
        "/tmp/dt-venv/lib/python3.11/site-packages; appended to sys.path",
    )
    args = ap.parse_args()
    en, zh = english_prose(), chinese_wiki()
    mb = {
        "en": sum(len(t.encode()) for t in en) / 1e6,
        "zh": sum(len(t.encode()) for t in zh) / 1e6,
    }
    lang = {"gopher_en": "en", "web_chain_zh": "zh", "web_chain_zh_jieba": "zh", "minhash_en": "en"}
    ours = {
        "gopher_en": lambda: run_chain(lambda: [GopherRepetition(), GopherQuality()], en),
        "web_chain_zh": lambda: run_chain(lambda: quality_steps("web"), zh),
        "web_chain_zh_jieba": lambda: run_chain(lambda: quality_steps("web", zh_words="jieba"), zh),
        "minhash_en": lambda: run_minhash(en),
    }
    theirs = datatrove_cases(en, zh) if add_datatrove_site(args.datatrove_site) else {}
    times: dict[str, list[float]] = {k: [] for k in ours}
    dt_times: dict[str, list[float]] = {k: [] for k in theirs}
    for name in theirs:  # warm-up: spaCy / jieba load their dictionaries once
        theirs[name]()
    ours["web_chain_zh_jieba"]()
    for _ in range(args.repeats):  # interleaved, so drift hits every case alike
        for name in ours:
            times[name].append(ours[name]())
            if name in theirs:
                dt_times[name].append(theirs[name]())
    result = {}
    print(f"{'case':<20}{'MB':>7}{'ours MB/s':>11}{'datatrove':>11}{'ratio':>8}"
          f"{'issue ref':>11}{'ratio':>8}")  # fmt: skip
    for name in ours:
        rate = mb[lang[name]] / statistics.median(times[name])
        same = SAME_DATATROVE_CASE.get(name, name)
        dt = mb[lang[name]] / statistics.median(dt_times[same]) if same in dt_times else None
        result[name] = {
            "mb_per_s": round(rate, 2),
            "datatrove_mb_per_s": None if dt is None else round(dt, 3),
            "vs_datatrove_same_run": None if dt is None else round(rate / dt, 1),
            "vs_issue_reference": round(rate / DATATROVE_MB_S[name], 1),
        }
        dt_cells = f"{'-':>11}{'-':>8}" if dt is None else f"{dt:>11.3f}{rate / dt:>7.1f}x"
        print(f"{name:<20}{mb[lang[name]]:>7.2f}{rate:>11.2f}{dt_cells}"
              f"{DATATROVE_MB_S[name]:>11.2f}{rate / DATATROVE_MB_S[name]:>7.1f}x")  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
