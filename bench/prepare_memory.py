"""Peak memory of `llmtrain prepare` on a generated corpus several times its memory bound.

The corpus is built from ../shared/data (Tiny Shakespeare + Chinese Wikipedia paragraphs),
repeated with variation (every copy has ~5 % of its words swapped, so exact dedup keeps it;
`--headers` also prefixes a unique "[n]", which adds one distinct word per document for the
tokenizer trainer to count) as JSONL files in a temporary folder (`--tmp`). `prepare` runs in a child process; its peak
RSS (ru_maxrss) is compared with the corpus size. Prints a table, then one JSON line.

    flock /tmp/llmtrain-bench.lock .venv/bin/python bench/prepare_memory.py --mb 1024
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def make_corpus(folder: Path, target_mb: int, seed: int = 0, headers: bool = True) -> int:
    rng = random.Random(seed)
    en = (SHARED / "tinyshakespeare.txt").read_text(encoding="utf-8").split("\n\n")
    zh = [json.loads(x)["text"] for x in (SHARED / "zh_wiki" / "zh_wiki_contexts.jsonl").open()]
    words = " ".join(en).split()
    written, part, n = 0, 0, 0
    while written < target_mb * 2**20:
        with open(folder / f"part_{part:04d}.jsonl", "w", encoding="utf-8") as f:
            for _ in range(20_000):
                base = rng.choice(en) if rng.random() < 0.6 else rng.choice(zh)
                toks = base.split(" ")
                for _ in range(max(1, len(toks) // 20)):  # ~5% of words changed
                    toks[rng.randrange(len(toks))] = rng.choice(words)
                text = (f"[{n}] " if headers else "") + " ".join(toks)
                line = json.dumps({"id": f"d{n}", "text": text}, ensure_ascii=False) + "\n"
                f.write(line)
                written += len(line.encode("utf-8"))
                n += 1
        part += 1
    return written


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=int, default=1024, help="corpus size to generate (MiB)")
    p.add_argument("--tokenizer", default="bpe")
    p.add_argument("--train-mb", type=int, default=64, help="--tokenizer-train-bytes in MiB")
    p.add_argument("--headers", action="store_true", help="a unique [n] header per document")
    p.add_argument("--tmp", default=None, help="folder for the corpus and output (deleted)")
    p.add_argument("--extra", nargs="*", default=[], help="more prepare flags")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmtrain-mem-", dir=args.tmp) as tmp:
        raw = Path(tmp) / "raw"
        raw.mkdir()
        size = make_corpus(raw, args.mb, headers=args.headers)
        cmd = [sys.executable, "-m", "llmtrain.cli.main", "prepare", str(raw), "--out",
               str(Path(tmp) / "out"), "--tokenizer", args.tokenizer, "--workers", "2",
               "--tokenizer-train-bytes", str(args.train_mb * 2**20), *args.extra]  # fmt: skip
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux: KiB
        manifest = json.loads((Path(tmp) / "out" / "manifest.json").read_text())
    row = {"corpus_mib": round(size / 2**20, 1), "peak_rss_mib": round(peak / 2**20, 1),
           "corpus_over_peak": round(size / peak, 2), "wall_s": round(wall, 1),
           "mib_per_s": round(size / 2**20 / wall, 2), "tokenizer": args.tokenizer,
           "train_mib": args.train_mb, "documents": manifest["stats"]["documents_kept"],
           "documents_read": manifest["stats"]["documents_read"], "headers": args.headers,
           "flags": " ".join(args.extra)}  # fmt: skip
    print(f"{'corpus MiB':>12} {'peak RSS MiB':>13} {'ratio':>6} {'wall s':>7} {'MiB/s':>6}")
    print(f"{row['corpus_mib']:>12} {row['peak_rss_mib']:>13} {row['corpus_over_peak']:>6} "
          f"{row['wall_s']:>7} {row['mib_per_s']:>6}")  # fmt: skip
    print(json.dumps(row))


if __name__ == "__main__":
    main()
