"""`evaluate_run(run)`: a fine-tuned run's metrics on its val and test data (the best
checkpoint, the files and split of its config, its saved label map) — what `llmtrain eval
RUN` prints for a fine-tuned run: accuracy, macro_f1, per_class, confusion (+ the averages,
ROC-AUC for two classes; with a tuned decision, decision.json's offsets); for SFT the loss
per assistant token."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from llmtrain.errors import ConfigError
from llmtrain.finetune.decision import Decision
from llmtrain.finetune.labels import LabelMap


def evaluate_run(
    run: str | Path, batch_size: int = 32, tune_decision: str | None = None
) -> dict[str, Any]:
    """`tune_decision` (a classifier; macro_f1, weighted_f1 or accuracy): tune the decision
    on val for the best checkpoint now (no retraining) and save it as decision.json. With a
    decision, each split also reports `argmax_<split>`: the same weights' plain-argmax
    accuracy, macro-F1 and per-class recall, so what the decision buys is read off directly."""
    from llmtrain.checkpoint.inference import load_trained
    from llmtrain.eval import evaluate
    from llmtrain.finetune.predict import tune_on_val
    from llmtrain.finetune.task import classification_splits, encode_split

    loaded = load_trained(run, best=True)
    cfg, f = loaded.config, loaded.config.finetune
    run_dir = loaded.checkpoint.parent.parent
    max_length = min(f.max_length or cfg.model.block_size, cfg.model.block_size)
    out: dict[str, Any] = {
        "checkpoint": str(loaded.checkpoint),
        "step": loaded.step,
        "task": f.task,
    }
    say = lambda m: print(m, file=sys.stderr)  # noqa: E731
    if tune_decision and f.task != "classify":
        raise ConfigError(f"--tune-decision is for classifiers; {run} is a {f.task} run")
    if f.task == "classify":
        from llmtrain.objectives.classify import Classify

        labels = LabelMap.load(run_dir)
        _, _, parts = classification_splits(f, labels, say, {})
        data = {
            split: encode_split(loaded.tokenizer, parts[split], max_length, split, say, {})
            for split in ("val", "test")
        }
        if tune_decision:
            if data["val"] is None:
                raise ConfigError(
                    "--tune-decision tunes on val data and this run has none (finetune.val "
                    "and finetune.val_fraction are unset)"
                )
            tuned = tune_on_val(
                loaded.model, data["val"], len(labels), loaded.step, tune_decision, batch_size
            )
            tuned.save(run_dir)
        decision = Decision.load(run_dir, loaded.step)
        if decision is not None:
            out["decision"] = asdict(decision)
        for split, d in data.items():
            if d is None:
                continue
            offsets = None if decision is None else decision.offsets
            obj = Classify(len(labels), names=labels.names, offsets=offsets)
            out[split] = evaluate(loaded.model, obj, d, micro_batch_size=batch_size)
            if decision is not None:
                plain = evaluate(loaded.model, Classify(len(labels), names=labels.names), d,
                                 micro_batch_size=batch_size)  # fmt: skip
                out[f"argmax_{split}"] = {
                    "accuracy": plain["accuracy"],
                    "macro_f1": plain["macro_f1"],
                    "recall": {n: c["recall"] for n, c in plain["per_class"].items()},
                }
        return out
    from llmtrain.finetune.chat import ChatFormat
    from llmtrain.finetune.sft_data import SFTData
    from llmtrain.finetune.tables import read_rows
    from llmtrain.objectives.sft import SFT

    chat = ChatFormat.load(run_dir)
    for split in ("val", "test"):
        path = getattr(f, split)
        if path:
            data = SFTData(
                loaded.tokenizer, chat, read_rows(path), path, max_length, f.messages_field
            )
            obj = SFT(cfg.model.vocab_size, cfg.objective)
            out[split] = evaluate(loaded.model, obj, data, micro_batch_size=batch_size)
    return out
