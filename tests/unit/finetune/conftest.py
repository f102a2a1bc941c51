"""Tiny base runs (a char tokenizer over English + Chinese, a 2-layer model saved as a
llmtrain checkpoint) and small labelled files for the fine-tuning tests."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
import torch

POS_EN = ["good", "great", "fine", "lovely", "clean"]
NEG_EN = ["bad", "awful", "dirty", "rude", "noisy"]
POS_ZH = ["很好", "干净", "舒服", "满意"]
NEG_ZH = ["很差", "脏", "吵", "失望"]
FILLER = ["the", "room", "was", "and", "staff", "房间", "服务", "酒店", "猫茶"]
CHARS = sorted(
    set("".join(POS_EN + NEG_EN + POS_ZH + NEG_ZH + FILLER))
    | set(" \n:?.,。ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789|<>_")
)


def make_base_run(root: Path, preset: str = "gpt2-tiny", seed: int = 0) -> Path:
    """A llmtrain run directory with one checkpoint of an untrained `preset` model."""
    from llmtrain.checkpoint.io import save_checkpoint
    from llmtrain.config import config_to_dict
    from llmtrain.models import build_model
    from llmtrain.tokenizer import CharTokenizer
    from llmtrain.train.config import load_run_config

    tok = CharTokenizer(CHARS)
    run = root / f"base_{preset}"
    tok.save(run / "tokenizer")
    objective = "mlm" if preset.startswith("bert") else "clm"
    cfg = load_run_config(
        [],
        preset,
        [f"model.vocab_size={tok.vocab_size + 1}", f"train.objective={json.dumps(objective)}"],
    )
    torch.manual_seed(seed)
    model = build_model(cfg.model)
    save_checkpoint(run / "checkpoints", 1, model, None, {"step": 1}, config_to_dict(cfg))
    return run


def sentiment_rows(n: int, seed: int = 0, imbalance: float = 0.5) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        pos = rng.random() < imbalance
        zh = rng.random() < 0.5
        words = (POS_ZH if zh else POS_EN) if pos else (NEG_ZH if zh else NEG_EN)
        fill = [rng.choice(FILLER) for _ in range(rng.randint(1, 6))]
        text = " ".join(fill + [rng.choice(words)] + fill[:2])
        rows.append({"text": text, "label": "pos" if pos else "neg"})
    return rows


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return path


@pytest.fixture(scope="module")
def gpt_base(tmp_path_factory) -> Path:
    return make_base_run(tmp_path_factory.mktemp("base"), "gpt2-tiny")


@pytest.fixture(scope="module")
def bert_base(tmp_path_factory) -> Path:
    return make_base_run(tmp_path_factory.mktemp("base"), "bert-tiny")
