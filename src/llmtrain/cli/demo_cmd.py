"""`llmtrain demo [--corpus PATH] [--out DIR] [--minutes M]`: the whole product in one command.

Prepares a corpus (default: the Python standard library's source and documentation, which
every Python installation carries), trains a small GPT for about M minutes on this machine,
evaluates it against a unigram baseline (what a model that learned nothing but token
frequencies scores), prints generated samples and says where every output went.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
import time
from pathlib import Path

DEMO_PRESET = "gpt2-mini"
# Short runs want a higher LR than the preset's 1e-3, and 128-token windows give twice the
# optimizer steps per minute of 256: at equal CPU time (100 CPU-s, stdlib corpus) val bpb
# 1.94 against 2.62 for the preset, whose samples were word salad (bench: see README).
DEMO_OVERRIDES = ("train.lr=3e-3", "train.min_lr=3e-4", "model.block_size=128")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="prepare → train → eval → generate in one go", description=__doc__
    )
    p.add_argument(
        "--corpus",
        action="append",
        default=[],
        metavar="PATH",
        help="your text files/folders (default: builtin:python)",
    )
    p.add_argument("--out", default="runs/demo", help="output directory (default runs/demo)")
    p.add_argument("--minutes", type=float, default=3.0, help="training time budget")
    p.add_argument("--tokenizer", default="bpe", help="bpe | char | byte")
    p.add_argument("--vocab-size", type=int, default=4096)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=run)


def _prepare(args: argparse.Namespace, data_dir: Path) -> dict:
    from llmtrain.data.prepare import PrepareConfig, prepare_corpus

    corpus = args.corpus or ["builtin:python"]
    stamp = {
        "corpus": [str(Path(c).resolve()) if not c.startswith("builtin:") else c for c in corpus],
        "tokenizer": args.tokenizer,
        "vocab": args.vocab_size,
    }
    stamp_file = data_dir / "demo_inputs.json"
    complete = (data_dir / "manifest.json").is_file() and stamp_file.is_file()
    if complete and json.loads(stamp_file.read_text()) == stamp:
        print(f"[1/4] prepare: reusing {data_dir} (same inputs as last time)")
        return json.loads((data_dir / "manifest.json").read_text())
    print(f"[1/4] prepare: {', '.join(corpus)} → {data_dir}")
    cfg = PrepareConfig(tokenizer=args.tokenizer, vocab_size=args.vocab_size)
    manifest = prepare_corpus(corpus, data_dir, cfg, overwrite=True)
    stamp_file.write_text(json.dumps(stamp))
    return manifest


def _steps_for_budget(cfg, data_dir: Path, minutes: float) -> int:
    """Time a few optimizer steps of a throw-away trainer and size max_steps to the budget."""
    from llmtrain.train.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        probe = Trainer(cfg, Path(tmp) / "probe", show_progress=False)
        probe.train_step()  # warm-up: allocator, kernels
        t0, n = time.perf_counter(), 3
        for _ in range(n):
            probe.train_step()
        per_step = (time.perf_counter() - t0) / n
    # ~10 % of the budget goes to periodic evals and checkpoints.
    return max(20, int(minutes * 60 * 0.9 / per_step))


def run(args: argparse.Namespace) -> int:
    from llmtrain.checkpoint.inference import load_trained
    from llmtrain.generation import generate_text
    from llmtrain.train.config import load_run_config
    from llmtrain.train.trainer import Trainer

    out = Path(args.out)
    data_dir, run_dir = out / "data", out / "run"
    _prepare(args, data_dir)
    cfg = load_run_config(
        [],
        DEMO_PRESET,
        [f"data.path={json.dumps(str(data_dir))}", *DEMO_OVERRIDES, *args.overrides],
    )
    steps = _steps_for_budget(cfg, data_dir, args.minutes)
    cfg.train.max_steps = steps
    cfg.train.eval_every = cfg.train.checkpoint_every = max(1, steps // 4)
    cfg.train.log_every = max(1, min(10, steps // 50))
    cfg.train.eval_tokens = min(cfg.train.eval_tokens, 65536)  # evals stay a small part of M
    cfg.train.warmup_steps = min(cfg.train.warmup_steps, steps // 10)
    if run_dir.exists():
        shutil.rmtree(run_dir)  # the demo's own previous run
    trainer = Trainer(cfg, run_dir)
    n_params = sum(p.numel() for p in trainer.model.parameters())
    print(
        f"[2/4] train: {DEMO_PRESET}, {n_params / 1e6:.2f}M parameters, {steps} steps "
        f"(~{args.minutes:g} min), {trainer.prec.name} on {trainer.prec.device}"
    )
    result = trainer.fit()
    print(
        f"[3/4] eval: val loss {result['val_loss']:.4f}, perplexity {result['val_ppl']:.2f}, "
        f"{result['val_bpb']:.3f} bits per byte (unigram baseline "
        f"{unigram_bpb(data_dir):.3f}: token frequencies alone; lower is better)"
    )
    loaded = load_trained(run_dir)
    print("[4/4] generate:")
    for i, prompt in enumerate(_prompts(args)):
        text = "".join(
            generate_text(
                loaded.model,
                loaded.tokenizer,
                prompt,
                max_new_tokens=120,
                temperature=0.8,
                top_k=50,
                seed=i,
            )
        )
        print(f"--- prompt {prompt!r}\n{prompt}{text}\n")
    _summary(data_dir, run_dir, loaded.checkpoint)
    return 0


def unigram_bpb(data_dir: Path) -> float:
    """Bits per byte on the val split of a unigram model fitted on train (add-one smoothed):
    the score of a model that learned token frequencies and nothing else."""
    import numpy as np

    from llmtrain.data import open_split, read_manifest

    manifest = read_manifest(data_dir)
    vocab = manifest["tokenizer"]["vocab_size"]
    counts = np.ones(vocab, dtype=np.float64)
    for shard in open_split(data_dir, "train"):
        counts += np.bincount(np.asarray(shard), minlength=vocab)[:vocab]
    logp = np.log(counts / counts.sum())
    nats = sum(float(-logp[np.asarray(s)].sum()) for s in open_split(data_dir, "val"))
    return nats / (manifest["splits"]["val"]["bytes"] * math.log(2))


def _prompts(args: argparse.Namespace) -> list[str]:
    if args.corpus:
        return ["", "The "]
    return ["def ", "class ", '"""Return the ']


def _summary(data_dir: Path, run_dir: Path, ckpt: Path) -> None:
    print("outputs:")
    print(f"  prepared data   {data_dir}/ (manifest.json, report.json, tokenizer/, shards)")
    print(f"  run config      {run_dir / 'config.json'}")
    print(f"  metrics         {run_dir / 'metrics.jsonl'}")
    print(f"  checkpoint      {ckpt}")
    print("next:")
    print(f"  llmtrain generate {run_dir} --prompt 'def ' --max-new-tokens 200")
    print(f"  llmtrain eval {run_dir}")
