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

from llmtrain.finetune.decision import Decision
from llmtrain.finetune.labels import LabelMap


def evaluate_run(run: str | Path, batch_size: int = 32) -> dict[str, Any]:
    from llmtrain.checkpoint.inference import load_trained
    from llmtrain.eval import evaluate
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
    if f.task == "classify":
        from llmtrain.objectives.classify import Classify

        labels = LabelMap.load(run_dir)
        decision = Decision.load(run_dir, loaded.step)
        if decision is not None:
            out["decision"] = asdict(decision)
        _, _, parts = classification_splits(f, labels, say, {})
        for split in ("val", "test"):
            data = encode_split(loaded.tokenizer, parts[split], max_length, split, say, {})
            if data is not None:
                offsets = None if decision is None else decision.offsets
                obj = Classify(len(labels), names=labels.names, offsets=offsets)
                out[split] = evaluate(loaded.model, obj, data, micro_batch_size=batch_size)
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
