"""Throughput per core of the `prepare` cleaning steps and near-duplicate quality, on real text.

Measures (medians of --repeats runs, one process, one core): the Gopher quality + repetition
chain on English prose (NLTK state_union + movie_reviews), the full web chain (Gopher, C4,
FineWeb) on Chinese Wikipedia paragraphs, and MinHash signatures on the English prose; then
recall / false positives of near-dedup on a planted set (documents copied with p % of words
replaced, p = 1, 2, 3, 5) against distinct documents. Ratios are against datatrove's figures
measured on this machine (issue 3: 0.49 / 0.25 / 0.64 MB/s per core); datatrove itself is not
run here. Prints a table, then one JSON line.  Run: flock /tmp/llmtrain-bench.lock python bench/prepare_filters.py
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

from llmtrain.data.prepare import Document
from llmtrain.data.prepare.minhash import NearDedup, shingles, signatures
from llmtrain.data.prepare.quality import GopherQuality, GopherRepetition, quality_steps

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DATATROVE_MB_S = {"gopher_en": 0.49, "web_chain_zh": 0.25, "minhash_en": 0.64}


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


def planted(texts: list[str], rate: float, seed: int) -> tuple[float, float]:
    """(recall on copies with `rate` of words replaced, false-positive rate on originals)."""
    rng = random.Random(seed)
    originals = [t for t in texts if len(t.split()) >= 200][:1000]
    copies = []
    for text in originals[:500]:
        words = text.split()
        for i in rng.sample(range(len(words)), max(1, round(len(words) * rate))):
            words[i] = rng.choice(("lorem", "ipsum", "dolor", "amet"))
        copies.append(" ".join(words))
    with tempfile.TemporaryDirectory() as tmp:
        step = NearDedup(Path(tmp) / "nd")
        list(
            step(Document(text=t, id=str(i), source="b") for i, t in enumerate(originals + copies))
        )
        mask = step.finish()
    return float(mask[len(originals) :].mean()), float(mask[: len(originals)].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    en, zh = english_prose(), chinese_wiki()
    mb = {
        "en": sum(len(t.encode()) for t in en) / 1e6,
        "zh": sum(len(t.encode()) for t in zh) / 1e6,
    }
    cases = {
        "gopher_en": (lambda: run_chain(lambda: [GopherRepetition(), GopherQuality()], en), "en"),
        "web_chain_zh": (lambda: run_chain(lambda: quality_steps("web"), zh), "zh"),
        "minhash_en": (lambda: run_minhash(en), "en"),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.repeats):  # interleaved, so drift hits every case alike
        for name, (fn, _) in cases.items():
            times[name].append(fn())
    result = {}
    print(f"{'case':<14}{'MB':>7}{'median s':>10}{'MB/s/core':>11}{'datatrove':>11}{'ratio':>8}")
    for name, (_, lang) in cases.items():
        rate = mb[lang] / statistics.median(times[name])
        ratio = rate / DATATROVE_MB_S[name]
        result[name] = {"mb_per_s": round(rate, 2), "vs_datatrove": round(ratio, 1)}
        print(f"{name:<14}{mb[lang]:>7.2f}{statistics.median(times[name]):>10.3f}{rate:>11.2f}"
              f"{DATATROVE_MB_S[name]:>11.2f}{ratio:>7.1f}x")  # fmt: skip
    print(f"\n{'planted edit':<14}{'recall':>8}{'false pos':>11}")
    result["near_dedup"] = {}
    for rate in (0.01, 0.02, 0.03, 0.05):
        recall, fp = planted(en, rate, seed=int(rate * 100))
        result["near_dedup"][f"{rate:.0%}"] = {"recall": round(recall, 3), "false_positive": round(fp, 4)}  # fmt: skip
        print(f"{rate:<14.0%}{recall:>8.3f}{fp:>11.4f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
