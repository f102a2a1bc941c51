"""Near-duplicate quality of `prepare --near-dedup` on a planted set built from shared data.

Originals: 1,000 English prose documents (NLTK state_union + movie_reviews, >= 200 words)
and 1,000 Chinese Wikipedia paragraphs (>= 200 characters). Copies: the first 500 of each
with p % of the words (English) or characters (Chinese) edited, each edit a substitution,
insertion or deletion at random (p = 1, 2, 3, 5, 8). Recall = copies found; false positives
= originals flagged (distinct documents; a few are genuine near copies of each other).
Runs every LSH preset, and datatrove's MinHash dedup on the same documents when datatrove
is importable. Prints a table, then one JSON line.

    flock /tmp/llmtrain-bench.lock .venv/bin/python bench/prepare_neardup.py
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

import numpy as np
from prepare_filters import add_datatrove_site, chinese_wiki, english_prose

from llmtrain.data.prepare import Document
from llmtrain.data.prepare.minhash import LSH_PRESETS, NearDedup

RATES = (0.01, 0.02, 0.03, 0.05, 0.08)


def edit(units: list[str], rate: float, rng: random.Random, pool: list[str]) -> list[str]:
    """`units` with round(rate * len) random substitutions, insertions and deletions."""
    units = list(units)
    for _ in range(max(1, round(len(units) * rate))):
        op, i = rng.randrange(3), rng.randrange(len(units))
        if op == 0:
            units[i] = rng.choice(pool)
        elif op == 1:
            units.insert(i, rng.choice(pool))
        elif len(units) > 1:
            del units[i]
    return units


def planted_set(lang: str, rate: float, seed: int) -> tuple[list[str], list[str]]:
    """(1,000 originals, 500 edited copies of the first 500)."""
    rng = random.Random(seed)
    if lang == "en":
        originals = [t for t in english_prose() if len(t.split()) >= 200][:1000]
        pool = " ".join(originals[:50]).split()
        copies = [" ".join(edit(t.split(), rate, rng, pool)) for t in originals[:500]]
    else:
        originals = [t for t in chinese_wiki() if len(t) >= 200][:1000]
        pool = list("".join(originals[:50]))
        copies = ["".join(edit(list(t), rate, rng, pool)) for t in originals[:500]]
    return originals, copies


def ours(texts: list[str], preset: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        step = NearDedup(Path(tmp) / "nd", LSH_PRESETS[preset])
        list(step(Document(text=t, id=str(i), source="b") for i, t in enumerate(texts)))
        return step.finish()


def datatrove(texts: list[str], lang: str) -> np.ndarray | None:
    """datatrove's 4-stage MinHash dedup (FineWeb config: 14 x 8, word 5-grams), or None."""
    try:
        from datatrove.data import Document as DTDocument
        from datatrove.pipeline.dedup.minhash import (
            MinhashConfig,
            MinhashDedupBuckets,
            MinhashDedupCluster,
            MinhashDedupFilter,
            MinhashDedupSignature,
        )
        from datatrove.utils.hashing import HashConfig
    except ImportError:
        return None
    language = "cmn_Hani" if lang == "zh" else "en"  # "zh" maps to a tokenizer without jieba
    cfg = MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=14, hashes_per_bucket=8)
    docs = [DTDocument(text=t, id=str(i)) for i, t in enumerate(texts)]
    with tempfile.TemporaryDirectory() as tmp:
        sig, buc, clu = (f"{tmp}/{d}" for d in ("sigs", "buckets", "clusters"))
        MinhashDedupSignature(output_folder=sig, config=cfg, language=language).run(iter(docs))
        for b in range(cfg.num_buckets):
            MinhashDedupBuckets(input_folder=sig, output_folder=buc, config=cfg).run(
                None, rank=b, world_size=cfg.num_buckets
            )
        MinhashDedupCluster(input_folder=buc, output_folder=clu, config=cfg).run(None)
        kept = MinhashDedupFilter(input_folder=clu).run(iter(docs))
        kept_ids = {int(d.id) for d in kept}
    return np.array([i not in kept_ids for i in range(len(texts))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", type=float, nargs="*", default=RATES)
    ap.add_argument("--datatrove-site", help="site-packages of a venv with datatrove")
    args = ap.parse_args()
    add_datatrove_site(args.datatrove_site)
    methods = [*(f"ours:{p}" for p in LSH_PRESETS), "datatrove"]
    result: dict = {}
    print(f"{'lang':<5}{'edit':>6}" + "".join(f"{m:>26}" for m in methods))
    print(f"{'':<11}" + "".join(f"{'recall / false pos':>26}" for _ in methods))
    for lang in ("en", "zh"):
        for rate in args.rates:
            originals, copies = planted_set(lang, rate, seed=int(rate * 1000))
            row = {}
            for m in methods:
                texts = originals + copies
                mask = datatrove(texts, lang) if m == "datatrove" else ours(texts, m[5:])
                if mask is None:
                    continue
                row[m] = {
                    "recall": round(float(mask[len(originals) :].mean()), 4),
                    "false_positive": round(float(mask[: len(originals)].mean()), 4),
                }
            result[f"{lang}@{rate:.0%}"] = row
            cells = "".join(
                f"{row[m]['recall']:>15.3f} / {row[m]['false_positive']:<8.3f}"
                if m in row
                else f"{'not installed':>26}"
                for m in methods
            )
            print(f"{lang:<5}{rate:>6.0%}{cells}", flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
