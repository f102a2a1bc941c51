#!/usr/bin/env python
"""Benchmark: what Chinese whole-word masking (`objective.whole_word = "jieba"`) costs the
MLM batch, on Chinese Wikipedia (../shared/data/zh_wiki) with a byte-level BPE tokenizer.

For each masking mode (token, tokenizer words, jieba words) it times `make_batch` on the
same packed windows, twice (the second pass is a second epoch: jieba's results are memoised
per Han run), and a bert-tiny / BERT-mini-shaped training step (forward + backward + AdamW) on
the same batch, so the cost reads as a fraction of a step. It also reports the masking
rate and the mean tokens per masked unit, and checks that a jieba word is never partly
masked. Medians over `--repeats`.

Usage: python bench/whole_word_zh.py [--batch 16] [--seq 128] [--windows 64] [--threads 2]
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
ZH_WIKI = ROOT.parent / "shared" / "data" / "zh_wiki" / "zh_wiki_contexts.jsonl"
MODES = {"token": False, "tokenizer": True, "jieba": "jieba"}


def _windows(tok, texts: list[str], n: int, T: int) -> torch.Tensor:
    stream = []
    for t in texts:
        stream += tok.encode(t) + [tok.eos_id]
        if len(stream) > n * T:
            break
    return torch.tensor(stream[: n * T]).view(n, T)


def _step_seconds(model, x: torch.Tensor, targets: torch.Tensor, repeats: int) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--windows", type=int, default=64, help="distinct windows (batches x B)")
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from llmtrain.config.core import config_from_dict
    from llmtrain.models import ModelConfig, build_model
    from llmtrain.models.presets import get_model_preset
    from llmtrain.objectives import IGNORE_INDEX, ObjectiveConfig, build_objective
    from llmtrain.tokenizer import train_tokenizer

    texts = [json.loads(line)["text"] for line in ZH_WIKI.open(encoding="utf-8")]
    tok = train_tokenizer("bpe", texts[:1500], vocab_size=args.vocab)
    x_all = _windows(tok, texts[1500:], args.windows, args.seq)
    batches = x_all.split(args.batch)
    rows, out = [], {"batch": args.batch, "seq": args.seq, "tokenizer": "bpe", "modes": {}}
    with tempfile.TemporaryDirectory() as d:
        tok.save(d)
        for mode, ww in MODES.items():
            cfg = ObjectiveConfig(whole_word=ww)
            t0 = time.perf_counter()
            obj = build_objective("mlm", cfg, tok.vocab_size, args.seq, seed=0, tokenizer_dir=d)
            setup = time.perf_counter() - t0
            passes, picked, units = [], 0, []
            for _ in range(2):  # epoch 1, epoch 2 (memoised jieba runs)
                t0 = time.perf_counter()
                for i, xb in enumerate(batches):
                    b = obj.make_batch((xb, xb), step=i, micro=0)
                    sel = b.targets != IGNORE_INDEX
                    picked += int(sel.sum())
                    starts = obj.word_starts(xb)
                    if starts is not None:  # tokens per selected unit
                        units.append(
                            int(sel.sum()) / max(int((sel & (starts | (xb < 4))).sum()), 1)
                        )
                passes.append((time.perf_counter() - t0) / len(batches))
            rate = picked / (2 * int((x_all >= 4).sum()))
            res = {
                "setup_s": round(setup, 2),
                "batch_ms_epoch1": round(1e3 * passes[0], 2),
                "batch_ms_epoch2": round(1e3 * passes[1], 2),
                "mask_rate": round(rate, 4),
                "tokens_per_unit": round(statistics.mean(units), 3) if units else 1.0,
            }
            out["modes"][mode] = res
            rows.append((mode, res))
    sizes = {  # bert-tiny, and BERT-mini's shape (4 layers, width 256; Turc et al. 2019)
        "bert-tiny": get_model_preset("bert-tiny"),
        "bert-mini": {**get_model_preset("bert-tiny"), "n_layer": 4, "n_head": 4, "n_embd": 256},
    }
    for name, preset in sizes.items():
        fields = {**preset, "vocab_size": tok.vocab_size + 1, "block_size": args.seq}
        model = build_model(config_from_dict(ModelConfig, fields)).train()
        xb = batches[0]
        ms = 1e3 * _step_seconds(model, xb, xb, args.repeats)
        out[f"{name}_step_ms"] = round(ms, 1)
    print(
        f"{'mode':<10} {'setup s':>8} {'ms/batch e1':>12} {'ms/batch e2':>12} {'mask rate':>10} "
        f"{'tok/unit':>9}"
    )
    for mode, r in rows:
        print(
            f"{mode:<10} {r['setup_s']:>8} {r['batch_ms_epoch1']:>12} {r['batch_ms_epoch2']:>12} "
            f"{r['mask_rate']:>10} {r['tokens_per_unit']:>9}"
        )
    for name in sizes:
        print(f"{name} train step (same batch): {out[f'{name}_step_ms']} ms")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
