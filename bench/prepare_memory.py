"""Peak memory of `llmtrain prepare` on generated corpora several times its memory bound.

The corpus is built from ../shared/data (Tiny Shakespeare + Chinese Wikipedia paragraphs),
repeated with variation (every copy has ~5 % of its words swapped, so exact dedup keeps it;
`--headers` also prefixes a unique "[n]", which adds one distinct word per document for the
tokenizer trainer to count) as JSONL files in a temporary folder (`--tmp`). Each size in
`--mb` is generated once and prepared once per `--near-dedup` setting (off, on or both),
each `prepare` in its own child process whose peak RSS (ru_maxrss from wait4) is compared
with the corpus size. Prints a table, then one JSON line (a list of rows).

    OMP_NUM_THREADS=2 flock /tmp/llmtrain-bench.lock .venv/bin/python bench/prepare_memory.py \
        --mb 256 1024 --near-dedup both

`--inputs PATH...` prepares those files/folders instead (no generated corpus), e.g. the
README's crawl command on real Chinese + English web text:

    .venv/bin/python bench/prepare_memory.py --inputs ../shared/data/zh_wiki \
        ../shared/data/en_web --workers 1 2 --extra=--quality=web --extra=--pii \
        --extra=--near-dedup --extra=--languages=en,zh
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
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


def run_prepare(
    raw: Path | list[str], out: Path, args: argparse.Namespace, near: bool, workers: int = 2
) -> dict:
    """Prepare `raw` into `out` in a child process: its peak RSS (the largest of the process
    and each worker it waited for), wall time and counts."""
    inputs = [str(raw)] if isinstance(raw, Path) else raw
    cmd = [sys.executable, "-m", "llmtrain.cli.main", "prepare", *inputs, "--out", str(out),
           "--tokenizer", args.tokenizer, "--workers", str(workers),
           "--tokenizer-train-bytes", str(args.train_mb * 2**20), "--quiet",
           *(["--near-dedup"] if near else []), *args.extra]  # fmt: skip
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the max of all
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, cmd)
    wall = time.perf_counter() - t0
    stats = json.loads((out / "manifest.json").read_text())["stats"]
    shutil.rmtree(out)
    return {"peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "wall_s": round(wall, 1),
            "documents": stats["documents_kept"], "documents_read": stats["documents_read"],
            "near_duplicates_removed": stats.get("near_duplicates_removed", 0)}  # fmt: skip


def measure_inputs(args: argparse.Namespace) -> None:
    """Peak RSS of `prepare --inputs ... --extra ...` for each --workers value."""
    size = sum(
        f.stat().st_size
        for p in map(Path, args.inputs)
        for f in ([p] if p.is_file() else p.rglob("*"))
        if f.is_file()
    )
    rows = []
    for workers in args.workers:
        with tempfile.TemporaryDirectory(prefix="llmtrain-mem-", dir=args.tmp) as tmp:
            got = run_prepare(args.inputs, Path(tmp) / "out", args, False, workers)
        row = {"input_mib": round(size / 2**20, 1), "workers": workers, **got,
               "flags": " ".join(args.extra), "tokenizer": args.tokenizer}  # fmt: skip
        rows.append(row)
        print(f"{row['input_mib']:>6} MiB in, workers {workers}: peak RSS "
              f"{row['peak_rss_mib']} MiB, {row['wall_s']} s, {row['documents']} documents kept",
              flush=True)  # fmt: skip
    print(json.dumps(rows))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=int, nargs="+", default=[1024], help="corpus sizes (MiB)")
    p.add_argument("--near-dedup", choices=["off", "on", "both"], default="off",
                   help="prepare each corpus without --near-dedup, with it, or both")  # fmt: skip
    p.add_argument("--tokenizer", default="bpe")
    p.add_argument("--train-mb", type=int, default=64, help="--tokenizer-train-bytes in MiB")
    p.add_argument("--headers", action="store_true", help="a unique [n] header per document")
    p.add_argument("--tmp", default=None, help="folder for the corpus and output (deleted)")
    p.add_argument("--extra", action="append", default=[], help="a prepare flag (repeatable)")
    p.add_argument("--inputs", nargs="+", help="prepare these files/folders instead")
    p.add_argument(
        "--workers", type=int, nargs="+", default=[2], help="--workers values (with --inputs)"
    )
    args = p.parse_args()
    if args.inputs:
        measure_inputs(args)
        return
    nears = {"off": [False], "on": [True], "both": [False, True]}[args.near_dedup]
    rows = []
    print(f"{'corpus MiB':>10} {'near-dedup':>10} {'documents':>10} {'peak RSS MiB':>12} "
          f"{'ratio':>6} {'wall s':>7} {'MiB/s':>6}")  # fmt: skip
    for mb in args.mb:
        with tempfile.TemporaryDirectory(prefix="llmtrain-mem-", dir=args.tmp) as tmp:
            raw = Path(tmp) / "raw"
            raw.mkdir()
            size = make_corpus(raw, mb, headers=args.headers)
            for near in nears:
                got = run_prepare(raw, Path(tmp) / "out", args, near)
                row = {"corpus_mib": round(size / 2**20, 1), "near_dedup": near, **got,
                       "corpus_over_peak": round(size / 2**20 / got["peak_rss_mib"], 2),
                       "mib_per_s": round(size / 2**20 / got["wall_s"], 2),
                       "tokenizer": args.tokenizer, "train_mib": args.train_mb,
                       "headers": args.headers, "flags": " ".join(args.extra)}  # fmt: skip
                rows.append(row)
                print(f"{row['corpus_mib']:>10} {'on' if near else 'off':>10} "
                      f"{row['documents_read']:>10} {row['peak_rss_mib']:>12} "
                      f"{row['corpus_over_peak']:>6} {row['wall_s']:>7} {row['mib_per_s']:>6}",
                      flush=True)  # fmt: skip
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
