"""Fixtures for the end-to-end tests: a small synthetic mixed English/Chinese corpus prepared
once per session with the char tokenizer (fast, and exercises non-ASCII text)."""

from __future__ import annotations

import importlib.util
import os
import random
from pathlib import Path
from types import ModuleType

import pytest

WORDS = [
    "the",
    "model",
    "reads",
    "text",
    "and",
    "learns",
    "to",
    "predict",
    "the",
    "next",
    "token",
    "from",
    "what",
    "came",
    "before",
    "small",
    "steps",
    "add",
    "up",
    "when",
    "the",
    "loss",
    "goes",
    "down",
]
ZH = "语言模型从大量文本中学习预测下一个字符训练需要数据和耐心"


ROOT = Path(__file__).resolve().parents[2]


def load_file(relative: str) -> ModuleType:
    """A script of the repository (`bench/...py`, `scripts/...py`) imported as a module."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic_corpus(folder: Path, n_docs: int = 40, seed: int = 0) -> Path:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_docs):
        lines = []
        for _ in range(rng.randint(8, 16)):
            if rng.random() < 0.3:
                lines.append("".join(rng.choice(ZH) for _ in range(rng.randint(8, 20))) + "。")
            else:
                lines.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12))) + ".")
        (folder / f"doc_{i:03d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def char_data(tmp_path_factory) -> Path:
    from llmtrain.data.prepare import PrepareConfig, prepare_corpus

    root = tmp_path_factory.mktemp("corpus")
    corpus = synthetic_corpus(root / "raw")
    out = root / "data"
    prepare_corpus([corpus], out, PrepareConfig(tokenizer="char", val_fraction=0.2, workers=1))
    return out


def tiny_overrides(data: Path, steps: int = 20, **extra: object) -> list[str]:
    import json

    sets = {
        "data.path": json.dumps(str(data)),
        "model.n_layer": 2,
        "model.n_head": 2,
        "model.n_embd": 32,
        "model.block_size": 32,
        "train.max_steps": steps,
        "train.batch_size": 8,
        "train.micro_batch_size": 4,
        "train.lr": 3e-3,
        "train.min_lr": 3e-4,
        "train.warmup_steps": 2,
        "train.eval_every": 10,
        "train.eval_tokens": 2048,
        "train.checkpoint_every": 10,
        "train.log_every": 1,
        "train.precision": "fp32",
        "train.threads": 1,
    }
    if os.environ.get("LLMTRAIN_TEST_DEVICE"):  # e.g. cuda: the same tests on a GPU machine
        sets["train.device"] = os.environ["LLMTRAIN_TEST_DEVICE"]
        sets["train.compile"] = "off"  # the tests check logic, not kernels
    for kv in filter(None, os.environ.get("LLMTRAIN_TEST_SET", "").split(";")):
        key, _, value = kv.partition("=")  # e.g. "train.sync_free=on;optim.implementation=fused"
        sets[key.strip()] = value.strip()
    sets.update(extra)
    return [f"{k}={v}" for k, v in sets.items()]
