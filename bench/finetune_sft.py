#!/usr/bin/env python
"""Benchmark: instruction SFT teaches a pre-trained model an answer format in minutes.

The instruction set is built here from a template over real words of the shared corpora
(the most frequent alphabetic WikiText-2 words and Chinese Wikipedia characters): e.g.
"Spell 'river' backwards." -> "revir", "What is the first letter of 'river'?" -> "r",
"Repeat 'river' in brackets." -> "[river]",
"把“中国”重复两遍。" -> "中国中国". Words are split 80/20: the held-out prompts use words never
seen in SFT. The base is the run `bench/finetune_sentiment.py` pre-trained (pass --base),
fine-tuned with `llmtrain.finetune.finetune(task="sft")` (loss on assistant tokens only);
greedy `generate --chat` replies are scored by exact match, before SFT (the base model with the
same template, chat tokens freshly added) and after. The best checkpoint is chosen by loss on
a val set of other held-out prompts, never on the scored ones. The last line is one JSON
object.

Usage: OMP_NUM_THREADS=1 python bench/finetune_sft.py --base /tmp/ftbench/pretrain_run
       --out /tmp/sftbench [--steps 300] [--lora-rank 0]
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "src"))

TEMPLATES = [
    ("backwards", "Spell '{w}' backwards.", lambda w: w[::-1]),
    ("first_letter", "What is the first letter of '{w}'?", lambda w: w[0]),
    ("capitals", "Write '{w}' in capitals.", lambda w: w.upper()),
    ("brackets", "Repeat '{w}' in brackets.", lambda w: f"[{w}]"),
]
ZH_TEMPLATES = [("zh_repeat", "把“{w}”重复两遍。", lambda w: w + w)]


def vocab(n_en: int = 400, n_zh: int = 200) -> tuple[list[str], list[str]]:
    text = (SHARED / "wikitext2" / "wiki.test.raw").read_text("utf-8").lower()
    en = [w for w, _ in collections.Counter(re.findall(r"\b[a-z]{4,8}\b", text)).most_common(n_en)]
    zh_text = "".join(
        json.loads(x)["text"]
        for x in (SHARED / "zh_wiki" / "zh_wiki_contexts.jsonl").open(encoding="utf-8")
    )
    chars = [
        c for c, _ in collections.Counter(re.findall(r"[\u4e00-\u9fff]", zh_text)).most_common(n_zh)
    ]
    rng = random.Random(0)
    zh = ["".join(rng.sample(chars, 2)) for _ in range(n_zh)]
    return en, zh


def examples(en: list[str], zh: list[str]) -> list[dict]:
    out = []
    for words, templates in ((en, TEMPLATES), (zh, ZH_TEMPLATES)):
        for w in words:
            for kind, q, a in templates:
                user, answer = q.format(w=w), a(w)
                msgs = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
                out.append({"messages": msgs, "kind": kind})
    return out


def exact_match(model, tokenizer, fmt, rows: list[dict]) -> dict[str, float]:
    """Greedy replies scored by exact match: overall and per template."""
    from llmtrain.generation.chat import chat_reply

    hits: dict[str, list[bool]] = collections.defaultdict(list)
    for r in rows:
        reply = "".join(chat_reply(model, tokenizer, fmt, r["messages"][:1], max_new_tokens=24))
        ok = reply.strip() == r["messages"][1]["content"]
        hits[r["kind"]].append(ok)
        hits["all"].append(ok)
    return {k: round(sum(v) / len(v), 3) for k, v in hits.items()}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--base", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lora-rank", type=int, default=0)
    ap.add_argument("--eval-n", type=int, default=120, help="held-out prompts scored")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from llmtrain.checkpoint.inference import load_trained
    from llmtrain.finetune.api import finetune
    from llmtrain.finetune.chat import ChatFormat

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    en, zh = vocab()
    cut_en, cut_zh = int(0.8 * len(en)), int(0.8 * len(zh))
    train, held = examples(en[:cut_en], zh[:cut_zh]), examples(en[cut_en:], zh[cut_zh:])
    random.Random(1).shuffle(held)
    # disjoint: val picks the best checkpoint (by loss), held is scored; both over words
    # never seen in SFT
    val, held = held[args.eval_n : 2 * args.eval_n], held[: args.eval_n]
    for name, rows in (("train", train), ("val", val), ("held", held)):
        (out / f"{name}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8"
        )
    run = out / "sft"
    sets = [
        f"train.max_steps={args.steps}",
        "train.batch_size=32",
        "train.lr=1e-3",
        "train.min_lr=1e-4",
        "train.warmup_steps=20",
        f"train.eval_every={max(50, args.steps // 3)}",
        f"train.checkpoint_every={max(50, args.steps // 3)}",
        "finetune.max_length=64",
    ]
    if (run / "finetune.json").is_file():  # a finished run: score it again, no retraining
        report = json.loads((run / "finetune.json").read_text())
        res = {"step": report["best_checkpoint"], "elapsed_sec": None, "metrics": report["metrics"]}
    else:
        res = finetune(
            args.base,
            task="sft",
            data=str(out / "train.jsonl"),
            val=str(out / "val.jsonl"),
            out=run,
            lora_rank=args.lora_rank or None,
            overrides=sets,
            show_progress=False,
        )
    after = load_trained(run, best=True)
    fmt = ChatFormat.load(run)
    before = load_trained(args.base)  # the base, its embeddings grown for the chat tokens
    from llmtrain.models.heads import resize_vocab

    resize_vocab(before.model, after.model.cfg.vocab_size)
    em_before = exact_match(before.model, after.tokenizer, fmt, held)
    em_after = exact_match(after.model, after.tokenizer, fmt, held)
    sample = held[0]["messages"]
    from llmtrain.generation.chat import chat_reply

    reply = "".join(chat_reply(after.model, after.tokenizer, fmt, sample[:1], max_new_tokens=24))
    print(f"example: {sample[0]['content']!r} -> {reply!r} (expected {sample[1]['content']!r})")
    print(
        f"held-out exact match: before SFT {em_before}, after {em_after} "
        f"({len(held)} prompts, {len(train)} SFT examples)"
    )
    print(
        json.dumps(
            {
                "exact_match_before": em_before,
                "exact_match_after": em_after,
                "held_out": len(held),
                "train_examples": len(train),
                "steps": res["step"],
                "elapsed_sec": res["elapsed_sec"],
                "val": res["metrics"].get("val"),
            }
        )
    )


if __name__ == "__main__":
    main()
