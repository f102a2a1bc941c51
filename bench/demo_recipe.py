"""The demo's recipe against the preset's, at equal CPU time: val bits per byte, the unigram
baseline and samples, on `builtin:python` with a 4096-piece BPE.

Each case is trained for `--cpu-seconds` of process CPU time (steps sized from 4 timed steps,
so a busy machine changes the wall time, not the work), 1 thread. Prints one JSON line per case.
    OMP_NUM_THREADS=1 .venv/bin/python bench/demo_recipe.py --cpu-seconds 100
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from llmtrain.checkpoint.inference import load_trained
from llmtrain.cli.demo_cmd import DEMO_OVERRIDES, DEMO_PRESET, unigram_bpb
from llmtrain.data.prepare import PrepareConfig, prepare_corpus
from llmtrain.generation import generate_text
from llmtrain.train.config import load_run_config
from llmtrain.train.trainer import Trainer

CASES = {"preset": (), "demo": DEMO_OVERRIDES}


def cpu_per_step(cfg) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        probe = Trainer(cfg, Path(tmp) / "probe", show_progress=False)
        probe.train_step()
        t0 = time.process_time()
        for _ in range(4):
            probe.train_step()
        return (time.process_time() - t0) / 4


def run_case(name: str, data: Path, work: Path, cpu_seconds: float) -> dict:
    sets = [f"data.path={json.dumps(str(data))}", "train.threads=1", *CASES[name]]
    cfg = load_run_config([], DEMO_PRESET, sets)
    per = cpu_per_step(cfg)
    steps = max(20, int(cpu_seconds * 0.9 / per))
    t = cfg.train
    t.max_steps, t.eval_every, t.checkpoint_every = steps, max(1, steps // 4), max(1, steps // 4)
    t.eval_tokens, t.warmup_steps = min(t.eval_tokens, 65536), min(t.warmup_steps, steps // 10)
    res = Trainer(cfg, work / name, show_progress=False).fit()
    loaded = load_trained(work / name)
    samples = [
        p + "".join(generate_text(loaded.model, loaded.tokenizer, p, max_new_tokens=120,
                                  temperature=0.8, top_k=50, seed=i))
        for i, p in enumerate(["def ", "class ", '"""Return the '])
    ]  # fmt: skip
    return {"case": name, "overrides": list(CASES[name]), "steps": steps,
            "tokens": steps * t.batch_size * cfg.model.block_size, "cpu_per_step": round(per, 3),
            "val_loss": round(res["val_loss"], 4), "val_bpb": round(res["val_bpb"], 4),
            "unigram_bpb": round(unigram_bpb(work / "data"), 4), "samples": samples}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-seconds", type=float, default=100.0)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmtrain-demo-") as tmp:
        work = Path(tmp)
        cfg = PrepareConfig(tokenizer="bpe", vocab_size=4096)
        prepare_corpus(["builtin:python"], work / "data", cfg, overwrite=True, quiet=True)
        for name in args.cases:
            print(json.dumps(run_case(name, work / "data", work, args.cpu_seconds)), flush=True)


if __name__ == "__main__":
    main()
