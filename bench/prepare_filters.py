"""Throughput per core of `prepare`'s cleaning steps and MinHash vs datatrove, on real text.

Measures (medians of --repeats runs, one process, one core): the Gopher quality + repetition
chain on English prose (NLTK state_union + movie_reviews), the full web chain (Gopher, C4,
FineWeb) on Chinese Wikipedia paragraphs, and MinHash signatures on the English prose; then
with --datatrove-site (or datatrove installed), datatrove's same filters and MinHash signatures
on the same documents, interleaved with ours, and the ratio; also the ratio to the issue's
reference figures (0.49 / 0.25 / 0.64 MB/s per core). Near-dedup quality: prepare_neardup.py.

Word splitters differ, and that is most of the speed gap: ours is a regex split (Chinese: one
word per character, or jieba with --zh-words jieba), datatrove's is spaCy (Chinese: spaCy +
jieba). So each datatrove case also runs "like for like", with our splitter plugged into its
filters (`language=` takes a WordTokenizer); the Chinese jieba row is like for like as it
stands (jieba on both sides). For every filter case the table also gives how often both sides
take the same keep/remove decision on a document ("agree").
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
# our case -> (datatrove as shipped, datatrove with the same word splitter as ours)
DATATROVE_CASES = {
    "gopher_en": ("gopher_en", "gopher_en_same_words"),
    "web_chain_zh": ("web_chain_zh", "web_chain_zh_same_words"),
    "web_chain_zh_jieba": ("web_chain_zh", "web_chain_zh"),  # jieba on both sides
    "minhash_en": ("minhash_en", "minhash_en_same_words"),
}
WORDS = {  # the word splitter of each side, as printed
    "gopher_en": ("regex", "spaCy"), "web_chain_zh": ("chars", "spaCy+jieba"),
    "web_chain_zh_jieba": ("jieba", "spaCy+jieba"), "minhash_en": ("regex", "spaCy"),
}  # fmt: skip


def english_prose() -> list[str]:
    texts = []
    for name in ("nltk-state_union.zip", "nltk-movie_reviews.zip"):
        with zipfile.ZipFile(DATA / "en_prose" / name) as z:
            texts += [z.read(n).decode("latin-1") for n in z.namelist() if n.endswith(".txt")]
    return texts


def chinese_wiki() -> list[str]:
    path = DATA / "zh_wiki" / "zh_wiki_contexts.jsonl"
    return [json.loads(line)["text"] for line in path.open(encoding="utf-8")]


def run_chain(steps_factory, texts: list[str]) -> tuple[float, set[str]]:
    """Seconds to run the chain over `texts`, and the ids of the documents it keeps."""
    docs = (Document(text=t, id=str(i), source="b") for i, t in enumerate(texts))
    t0 = time.perf_counter()
    for step in steps_factory():
        docs = step(docs)
    kept = {d.id for d in docs}
    assert kept
    return time.perf_counter() - t0, kept


def run_minhash(texts: list[str]) -> tuple[float, None]:
    t0 = time.perf_counter()
    for i in range(0, len(texts), 256):
        signatures([shingles(t) for t in texts[i : i + 256]])
    return time.perf_counter() - t0, None


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


def our_word_splitter(segmenter: str = "chars"):
    """Our `textstats.words` as a datatrove WordTokenizer (for the like-for-like rows)."""
    from datatrove.utils.word_tokenizers import WordTokenizer

    from llmtrain.data.prepare.textstats import words

    class OurWords(WordTokenizer):
        def word_tokenize(self, text: str) -> list[str]:
            return words(text, segmenter)

        def sent_tokenize(self, text: str) -> list[str]:
            return [s for s in text.splitlines() if s.strip()]

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            raise NotImplementedError  # not used by the Gopher / FineWeb filters or MinHash

    return OurWords()


def datatrove_cases(en: list[str], zh: list[str]) -> dict:
    """The same measurements with datatrove's filters and MinHash signatures: as datatrove
    ships them (spaCy words) and with our word splitter ("_same_words")."""
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
        kept = {d.id for d in docs}
        assert len(kept) > 0.5 * len(texts), len(kept)  # documents flow through every filter
        return time.perf_counter() - t0, kept

    # FineWeb-2's cmn_Hani thresholds; spaCy + jieba words. The same work as our jieba chain,
    # whose alphabetic-word ratio counts characters instead (see quality._JIEBA_QUALITY).
    def zh_chain(lang="cmn_Hani"):
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

    import datatrove.utils.hashes.xxhash as dt_xxhash
    import xxhash

    # datatrove 0.10.1 hands str to xxhash, which xxhash 4.x rejects: encode it first
    dt_xxhash.xxhash64 = lambda data: xxhash.xxh64_intdigest(
        data.encode() if isinstance(data, str) else data
    )

    def minhash(texts, lang="en"):
        cfg = MinhashConfig(hash_config=HashConfig(precision=64))
        with tempfile.TemporaryDirectory() as tmp:
            step = MinhashDedupSignature(output_folder=tmp, config=cfg, language=lang)
            docs = [DTDocument(text=t, id=str(i)) for i, t in enumerate(texts)]
            t0 = time.perf_counter()
            step.run(iter(docs))
            return time.perf_counter() - t0, None

    def gopher(lang="en"):
        return [GopherRepetitionFilter(language=lang), GopherQualityFilter(language=lang)]

    return {
        "gopher_en": lambda: chain(gopher, en),
        "gopher_en_same_words": lambda: chain(lambda: gopher(our_word_splitter()), en),
        "web_chain_zh": lambda: chain(zh_chain, zh),
        "web_chain_zh_same_words": lambda: chain(lambda: zh_chain(our_word_splitter()), zh),
        "minhash_en": lambda: minhash(en),
        "minhash_en_same_words": lambda: minhash(en, our_word_splitter()),
    }


def _agree(a: set[str] | None, b: set[str] | None, n: int) -> float | None:
    """Share of the `n` documents on which both sides decide alike (kept by both or neither)."""
    if a is None or b is None:
        return None
    return round(1 - len(a ^ b) / n, 4)


def _row(name, mb, times, dt_times, kept, n) -> dict:
    rate = mb / statistics.median(times[name])
    raw, same = DATATROVE_CASES[name]
    dt = mb / statistics.median(dt_times[raw]) if dt_times.get(raw) else None
    dts = mb / statistics.median(dt_times[same]) if dt_times.get(same) else None
    return {
        "words": "/".join(WORDS[name]),
        "mb_per_s": round(rate, 2),
        "datatrove_mb_per_s": None if dt is None else round(dt, 3),
        "vs_datatrove_same_run": None if dt is None else round(rate / dt, 1),
        "agree": _agree(kept.get(name), kept.get("dt:" + raw), n),
        "datatrove_same_words_mb_per_s": None if dts is None else round(dts, 3),
        "vs_datatrove_same_words": None if dts is None else round(rate / dts, 1),
        "agree_same_words": _agree(kept.get(name), kept.get("dt:" + same), n),
        "vs_issue_reference": round(rate / DATATROVE_MB_S[name], 1),
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
    kept: dict[str, set[str] | None] = {}
    for name in theirs:  # warm-up: spaCy / jieba load their dictionaries once
        kept["dt:" + name] = theirs[name]()[1]
    ours["web_chain_zh_jieba"]()
    for _ in range(args.repeats):  # interleaved, so drift hits every case alike
        for name in ours:
            seconds, kept[name] = ours[name]()
            times[name].append(seconds)
            for dt_name in dict.fromkeys(DATATROVE_CASES[name]):
                if dt_name in theirs and len(dt_times[dt_name]) < len(times[name]):
                    dt_times[dt_name].append(theirs[dt_name]()[0])
    result = {name: _row(name, mb[lang[name]], times, dt_times, kept, len(en if lang[name] == "en" else zh)) for name in ours}  # fmt: skip
    print(f"{'case':<20}{'words ours/dt':>20}{'MB':>6}{'ours MB/s':>10}{'dt MB/s':>9}{'ratio':>7}"
          f"{'agree':>7}{'dt same words':>14}{'ratio':>7}{'agree':>7}")  # fmt: skip
    for name, r in result.items():
        cells = [f"{'-' if v is None else v:>{w}}" for v, w in (
            (r["datatrove_mb_per_s"], 9), (r["vs_datatrove_same_run"], 7), (r["agree"], 7),
            (r["datatrove_same_words_mb_per_s"], 14), (r["vs_datatrove_same_words"], 7),
            (r["agree_same_words"], 7))]  # fmt: skip
        print(
            f"{name:<20}{r['words']:>20}{mb[lang[name]]:>6.2f}{r['mb_per_s']:>10}" + "".join(cells)
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
