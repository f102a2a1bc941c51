"""A strong signal is caught: on a synthetic task where the right choice repeats a phrase of
the context (random two-character Chinese "words"; the wrong choice is two unseen words), a
tiny decoder trained through `Trainer` on text that repeats each line scores far above chance,
and the same model at step 0 scores at chance."""

from __future__ import annotations

import json
import random

import pytest
import torch

from llmtrain.cli.main import main

ALPHABET = "".join(chr(0x4E00 + 37 * i) for i in range(200))


def word(rng: random.Random) -> str:
    return rng.choice(ALPHABET) + rng.choice(ALPHABET)


def corpus(folder, rng: random.Random) -> None:
    folder.mkdir(parents=True)
    for d in range(60):
        lines = []
        for _ in range(20):
            phrase = "".join(word(rng) for _ in range(6))
            lines.append(f"{phrase}。{phrase}。")
        (folder / f"d{d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def task_rows(rng: random.Random, n: int = 40) -> list[dict]:
    rows = []
    for _ in range(n):
        words = [word(rng) for _ in range(6)]
        k = rng.randint(1, 3)
        right, wrong = "".join(words[k : k + 2]), word(rng) + word(rng)
        choices = [right, wrong]
        rng.shuffle(choices)
        query = "".join(words) + "。" + "".join(words[:k])
        rows.append({"query": query, "choices": choices, "gold": choices.index(right)})
    return rows


@pytest.mark.slow
def test_trained_model_far_above_chance_untrained_at_chance(tmp_path):
    from llmtrain.checkpoint.inference import load_trained
    from llmtrain.data.prepare import PrepareConfig, prepare_corpus
    from llmtrain.eval.multiple_choice import score_task
    from llmtrain.eval.tasks import load_task
    from llmtrain.models import build_model

    corpus(tmp_path / "raw", random.Random(0))
    data = tmp_path / "data"
    prepare_corpus([tmp_path / "raw"], data, PrepareConfig(tokenizer="char", workers=1))
    path = tmp_path / "repeat.jsonl"
    rows = task_rows(random.Random(1))
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    sets = {
        "data.path": json.dumps(str(data)),
        "model.n_layer": 1,
        "model.n_head": 2,
        "model.n_embd": 64,
        "model.block_size": 32,
        "model.tie_embeddings": "false",
        "model.pos_embedding": '"rope"',  # relative offsets: copying is learned fast
        "train.max_steps": 500,
        "train.batch_size": 8,
        "train.lr": 3e-3,
        "train.min_lr": 3e-4,
        "train.warmup_steps": 10,
        "train.eval_every": 500,
        "train.eval_tokens": 1024,
        "train.checkpoint_every": 500,
        "train.precision": '"fp32"',
        "train.compile": '"off"',
        "train.threads": 1,
    }
    argv = ["train", "--out", str(tmp_path / "run"), "--quiet"]
    for k, v in sets.items():
        argv += ["--set", f"{k}={v}"]
    assert main(argv) == 0
    loaded = load_trained(tmp_path / "run")
    task = load_task(path)
    trained = score_task(loaded.model, loaded.tokenizer, task, quiet=True)
    torch.manual_seed(loaded.config.train.seed)
    untrained = score_task(build_model(loaded.config.model), loaded.tokenizer, task, quiet=True)
    se = (0.25 / len(task.items)) ** 0.5  # of an accuracy at chance
    assert task.chance == 0.5
    assert trained["acc"] >= 0.85, trained["acc"]
    assert abs(untrained["acc"] - 0.5) <= 3 * se, untrained["acc"]
