#!/usr/bin/env python
"""Benchmark: sentiment classifiers fine-tuned from a model llmtrain pre-trained on this CPU,
against the majority class and TF-IDF + logistic regression on the same test split.

1. Split each set stratified 80/20 with seed 0 (ChnSentiCorp hotel reviews, 2:1 imbalanced;
   MR rt-polarity sentences, balanced); 10 % of the 80 is the fine-tune's val set (best
   checkpoint by macro-F1), the 20 is the test set every row below is scored on.
2. Pre-train one bilingual decoder (gpt2-mini shape, block 128, 8192-token BPE) for a fixed
   wall-clock budget on the shared corpora: Chinese Wikipedia paragraphs (zh_wiki), NLTK
   movie_reviews (2,000 English reviews), WikiText-2, and the unlabelled TEXT of the 80 %
   training parts (task-adaptive pre-training, Gururangan et al. 2020; no label, and no test
   text, is ever seen; `--no-task-text` leaves them out).
3. Baselines on the same split: the majority class, and TF-IDF character 1-3-grams +
   logistic regression (scikit-learn), fitted on the fine-tunes' 90 % training part with its
   C chosen on their val part (and, for reference, at scikit-learn's default C = 1).
4. Fine-tunes through `llmtrain.finetune.finetune` (the one Trainer): full, LoRA (rank 8),
   full + class-weighted loss ("balanced"), full + focal loss (gamma 2), full + oversampling
   (+ focal), full with the decision tuned on val for macro-F1 (`finetune.tune_decision`).
   Every run of a set trains the same number of steps (`--epochs` passes over the plain
   training part, 32 per batch) and keeps its best checkpoint by val macro-F1. The learning
   rate is chosen on VAL, never on test: the full fine-tune runs at each of `--lrs` (LoRA at
   each of `--lora-lrs`), the one with the best val macro-F1 is its row, and the full
   variants (weighted, focal, oversampling, tuned) use the full run's chosen rate.
Reports test accuracy, macro-F1 and the minority class's recall (ChnSentiCorp: label 0 =
negative; MR: neg). The last line is one JSON object with every figure.

Usage: OMP_NUM_THREADS=1 python bench/finetune_sentiment.py --out /tmp/ftbench
       [--pretrain-sec 240] [--epochs 3] [--lrs 3e-4,1e-3] [--lora-lrs 1e-3,3e-3]
       [--only chn,mr] [--runs full,lora,weighted,...] [--threads 2] [--no-task-text]
       [--seed N]
Needs ../shared/data (sentiment/, zh_wiki/, en_prose/, wikitext2/).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "src"))

C_GRID = (0.25, 1.0, 4.0, 16.0, 64.0, 256.0)  # logistic regression's inverse regularisation, on val
RUNS = {
    "full": [],
    "lora": ["finetune.lora.rank=8"],
    "weighted": ['finetune.class_weights="balanced"'],
    "focal": ["finetune.focal_gamma=2.0"],
    "oversample": ["finetune.oversample=true"],
    "oversample_focal": ["finetune.oversample=true", "finetune.focal_gamma=2.0"],
    "tuned": None,  # the full run's weights, decision tuned on val (`eval --tune-decision`)
}


def pretrain_corpus(out: Path, task_train: list[Path]) -> list[Path]:
    """Plain-text / JSONL inputs for `prepare`: zh_wiki, movie_reviews (unzipped), WikiText-2,
    and the text column (only) of each `task_train` CSV."""
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(SHARED / "en_prose" / "nltk-movie_reviews.zip") as z:
        texts = [
            z.read(n).decode("utf-8") for n in z.namelist() if n.endswith(".txt") and "/cv" in n
        ]
    (raw / "movie_reviews.jsonl").write_text(
        "".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8"
    )
    (raw / "wikitext2.txt").write_text(
        (SHARED / "wikitext2" / "wiki.test.raw").read_text("utf-8"), "utf-8"
    )
    task = []
    for i, path in enumerate(task_train):  # unlabelled text of the training parts only
        with path.open(encoding="utf-8") as f:
            texts = [r["text"] for r in csv.DictReader(f)]
        task.append(raw / f"task_text_{i}.jsonl")
        task[-1].write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), "utf-8")
    return [
        *task,
        SHARED / "zh_wiki" / "zh_wiki_contexts.jsonl",
        raw / "movie_reviews.jsonl",
        raw / "wikitext2.txt",
    ]


def pretrain(out: Path, seconds: float, task_train: list[Path]) -> Path:
    from llmtrain.data.prepare import PrepareConfig, prepare_corpus
    from llmtrain.train.config import load_run_config
    from llmtrain.train.trainer import Trainer

    data, run = out / "pretrain_data", out / "pretrain_run"
    if not (data / "manifest.json").is_file():
        prepare_corpus(
            pretrain_corpus(out, task_train),
            data,
            PrepareConfig(tokenizer="bpe", vocab_size=8192, workers=1),
        )
    if (run / "checkpoints").is_dir():
        return run
    sets = [
        f"data.path={json.dumps(str(data))}",
        "model.block_size=128",
        "train.max_steps=100000",
        f"train.max_time_sec={seconds}",
        "train.batch_size=32",
        "train.lr=2e-3",
        "train.min_lr=2e-4",
        "train.warmup_steps=50",
        'train.lr_schedule="wsd"',
        "train.eval_every=500",
        "train.checkpoint_every=100000",
        "train.log_every=50",
        "model.dropout=0.0",
    ]
    cfg = load_run_config([], "gpt2-mini", sets)
    res = Trainer(cfg, run, show_progress=False).fit()
    print(
        f"pretrain: {res['step']} steps, {res['tokens']:,} tokens, val loss {res.get('val_loss', float('nan')):.3f}"
    )
    return run


def split_files(name: str, out: Path) -> tuple[Path, Path, str]:
    """(train.csv, test.csv, minority label) of a stratified 80/20 split, seed 0."""
    from llmtrain.finetune.labels import stratified_split

    if name == "chn":
        with (SHARED / "sentiment" / "ChnSentiCorp_htl_all.csv").open(encoding="utf-8") as f:
            rows = [
                {"text": r["review"], "label": r["label"]}
                for r in csv.DictReader(f)
                if r["review"].strip()
            ]
        minority = "0"
    else:
        rows = []
        for lab in ("pos", "neg"):
            text = (SHARED / "sentiment" / f"rt-polarity.{lab}").read_bytes().decode("latin-1")
            rows += [{"text": t.strip(), "label": lab} for t in text.splitlines() if t.strip()]
        minority = "neg"
    ids = {lab: i for i, lab in enumerate(sorted({r["label"] for r in rows}))}
    rest, test = stratified_split([ids[r["label"]] for r in rows], [0.2], seed=0)
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    for part, idx in (("train", rest), ("test", test)):
        with (d / f"{part}.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=["text", "label"])
            w.writeheader()
            w.writerows(rows[i] for i in idx)
    return d / "train.csv", d / "test.csv", minority


def baselines(train: Path, test: Path, minority: str) -> dict[str, dict[str, float]]:
    """The majority class, and TF-IDF char 1-3-grams + logistic regression tuned as fairly as
    the fine-tunes: fitted on the same 90 % of `train`, its C chosen on the same val 10 % (the
    split `finetune.val_fraction=0.1` makes), scored on `test`."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    from llmtrain.finetune.labels import LabelMap, stratified_split

    def load(p):
        with p.open(encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        return [r["text"] for r in rows], [r["label"] for r in rows]

    xtr, ytr = load(train)
    xte, yte = load(test)
    ids = LabelMap.from_values(ytr)
    fit, val = stratified_split([ids.get(y) for y in ytr], [0.1], seed=0)
    xfit, yfit = [xtr[i] for i in fit], [ytr[i] for i in fit]
    xval, yval = [xtr[i] for i in val], [ytr[i] for i in val]
    major = max(sorted(set(yfit)), key=yfit.count)  # ties: the first label, every run
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2)
    a, v = vec.fit_transform(xfit), vec.transform(xval)
    fits = {c: LogisticRegression(C=c, max_iter=3000).fit(a, yfit) for c in C_GRID}
    best_c = max(C_GRID, key=lambda c: f1_score(yval, fits[c].predict(v), average="macro"))
    out = {}
    for name, pred in (
        ("majority", [major] * len(yte)),
        ("tfidf_lr", list(fits[best_c].predict(vec.transform(xte)))),
    ):
        out[name] = {
            "accuracy": accuracy_score(yte, pred),
            "macro_f1": f1_score(yte, pred, average="macro"),
            "minority_recall": recall_score(yte, pred, pos_label=minority, average="binary"),
        }
    out["tfidf_lr"]["C"] = best_c
    out["tfidf_lr_c1"] = {  # scikit-learn's default C, the untuned baseline
        "accuracy": accuracy_score(yte, p1 := fits[1.0].predict(vec.transform(xte))),
        "macro_f1": f1_score(yte, p1, average="macro"),
        "minority_recall": recall_score(yte, p1, pos_label=minority, average="binary"),
    }
    return out


def finetune_run(
    base: Path,
    train: Path,
    test: Path,
    out: Path,
    sets: list[str],
    minority: str,
    steps: int,
    max_len: int,
):
    from llmtrain.finetune.api import finetune

    t0 = time.perf_counter()
    every = max(20, steps // 8)
    res = finetune(
        str(base),
        task="classify",
        data=str(train),
        test=str(test),
        out=out,
        show_progress=False,
        overrides=[
            f"train.max_steps={steps}",
            "train.batch_size=32",
            f"train.eval_every={every}",
            f"train.checkpoint_every={every}",
            f"finetune.max_length={max_len}",
            "train.warmup_steps=20",
            "finetune.val_fraction=0.1",
            *sets,
        ],
        say=lambda m: None,
    )
    m = res["metrics"]["test"]
    return {
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "val_macro_f1": res["metrics"]["val"]["macro_f1"],
        "minority_recall": m["per_class"][minority]["recall"],
        "best_step": int(Path(res["best_checkpoint"]).name.split("_")[1]),
        "sec": round(time.perf_counter() - t0, 1),
        "trainable": json.loads((out / "finetune.json").read_text())["parameters"],
    }


def tuned_row(full_run: Path, minority: str) -> dict:
    """The full run's best checkpoint with its decision tuned on val for macro-F1 (what
    `llmtrain eval RUN --tune-decision macro_f1` does): test figures of the same weights,
    tuned and plain."""
    from llmtrain.finetune.evaluate import evaluate_run

    ev = evaluate_run(full_run, tune_decision="macro_f1")
    m = ev["test"]
    return {
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "val_macro_f1": ev["val"]["macro_f1"],
        "minority_recall": m["per_class"][minority]["recall"],
        "argmax_macro_f1": ev["argmax_test"]["macro_f1"],
        "argmax_minority_recall": ev["argmax_test"]["recall"][minority],
        "offsets": ev["decision"]["offsets"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", required=True)
    ap.add_argument("--pretrain-sec", type=float, default=240)
    ap.add_argument(
        "--epochs",
        type=float,
        default=3.0,
        help="passes over the plain training part (every run of a set: the same steps)",
    )
    ap.add_argument("--lrs", default="3e-4,1e-3", help="full fine-tune rates, chosen on val")
    ap.add_argument("--lora-lrs", default="1e-3,3e-3", help="LoRA rates, chosen on val")
    ap.add_argument("--only", default="chn,mr")
    ap.add_argument("--runs", default=",".join(RUNS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-len-chn", type=int, default=160, help="tokens per review (cut)")
    ap.add_argument("--max-len-mr", type=int, default=64, help="tokens per sentence (cut)")
    ap.add_argument("--no-task-text", action="store_true", help="pre-train without the sets' text")
    ap.add_argument("--seed", type=int, default=None, help="fine-tune seed (init of the head, "
                    "data order); runs go to NAME_RUN_sSEED")  # fmt: skip
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    splits = {name: split_files(name, out) for name in args.only.split(",")}
    task_train = [] if args.no_task_text else [s[0] for s in splits.values()]
    base = pretrain(out, args.pretrain_sec, task_train)
    results: dict = {}
    for name, (train, test, minority) in splits.items():
        results[name] = baselines(train, test, minority)
        max_len = args.max_len_chn if name == "chn" else args.max_len_mr
        with train.open(encoding="utf-8") as f:
            n_train = round(sum(1 for _ in csv.DictReader(f)) * 0.9)  # 10 % is val
        steps = math.ceil(args.epochs * n_train / 32)
        chosen = {}  # "full" | "lora" -> the rate with the best val macro-F1
        dirs = {}  # run -> the directory of its chosen rate
        for run in args.runs.split(","):
            if RUNS[run] is None:  # paired with the full run: the same weights, no retraining
                results[name][run] = tuned_row(dirs["full"], minority)
                print(name, run, json.dumps(results[name][run]), flush=True)
                continue
            kind = "lora" if run == "lora" else "full"
            lrs = (
                [chosen[kind]]
                if kind in chosen
                else (args.lora_lrs if kind == "lora" else args.lrs).split(",")
            )
            tries, run_dirs = {}, {}
            for lr in lrs:
                sets = [*RUNS[run], f"train.lr={lr}"]
                tag = f"{name}_{run}" + (f"_lr{lr}" if len(lrs) > 1 else "")
                if args.seed is not None:
                    sets.append(f"train.seed={args.seed}")
                    tag += f"_s{args.seed}"
                tries[lr] = finetune_run(
                    base, train, test, out / tag, sets, minority, steps, max_len
                )
                run_dirs[lr] = out / tag
                print(name, run, f"lr={lr}", json.dumps(tries[lr]), flush=True)
            lr = max(tries, key=lambda k: tries[k]["val_macro_f1"])
            chosen.setdefault(kind, lr)
            dirs[run] = run_dirs[lr]
            results[name][run] = {**tries[lr], "lr": float(lr), "steps": steps}
    print(f"{'set':5} {'model':9} {'accuracy':>9} {'macro-F1':>9} {'min. recall':>11}")
    for name, rows in results.items():
        for model, r in rows.items():
            print(
                f"{name:5} {model:9} {r['accuracy']:9.4f} {r['macro_f1']:9.4f} {r['minority_recall']:11.4f}"
            )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
