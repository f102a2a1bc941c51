"""Predictions of a fine-tuned classifier: `load_classifier(run)` (the best checkpoint, its
label map and tokenizer) and `predict_file(...)`, which reads any input format, writes one
row per usable input row (its line, text, predicted label and every class probability) as
CSV or JSONL, and reports each skipped row by line. A labelled input is also scored. The
label is the run's tuned decision (decision.json) when it has one, else the argmax; the
probabilities are always the model's own."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llmtrain.errors import ConfigError
from llmtrain.finetune.datasets import ClassificationData, parse_rows
from llmtrain.finetune.decision import Decision, tuned_decision
from llmtrain.finetune.labels import LabelMap
from llmtrain.finetune.tables import read_rows, require_field
from llmtrain.objectives.classify import Classify, apply_offsets, classification_metrics


@dataclass
class Classifier:
    model: Any
    cfg: Any
    tokenizer: Any
    labels: LabelMap
    checkpoint: Path
    decision: Decision | None = None  # offsets tuned on val (finetune.tune_decision)

    @property
    def max_length(self) -> int:
        f = self.cfg.finetune
        return min(f.max_length or self.cfg.model.block_size, self.cfg.model.block_size)


def load_classifier(run: str | Path, device: str = "cpu") -> Classifier:
    from llmtrain.checkpoint.inference import load_trained

    loaded = load_trained(run, device, best=True)
    if loaded.config.finetune.task != "classify":
        raise ConfigError(
            f"{run} is not a fine-tuned classifier (finetune.task = "
            f"{loaded.config.finetune.task!r}); train one with `llmtrain finetune --task classify`"
        )
    run_dir = loaded.checkpoint.parent.parent
    return Classifier(
        loaded.model,
        loaded.config,
        loaded.tokenizer,
        LabelMap.load(run_dir),
        loaded.checkpoint,
        Decision.load(run_dir, loaded.step),
    )


def _write(out: Path, rows: list[dict[str, Any]]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if out.suffix.lower() in (".jsonl", ".json"):
        tmp.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
        )
    else:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(
                f, fieldnames=list(rows[0]), delimiter="\t" if out.suffix == ".tsv" else ","
            )
            w.writeheader()
            w.writerows(rows)
    tmp.replace(out)  # never a half-written file that looks complete


def predict_file(
    clf: Classifier,
    input_path: str,
    out: str | Path,
    text_field: str | None = None,
    label_field: str | None = None,
    batch_size: int = 32,
    say=print,
) -> dict[str, Any]:
    """Write predictions for `input_path` to `out` (.csv/.tsv/.jsonl); returns counts and,
    when the input has the run's label column, the metrics."""
    f = clf.cfg.finetune
    text_field = text_field or f.text_field
    rows = read_rows(input_path)
    require_field(input_path, rows, text_field, "--text-field")
    label_field = label_field or f.label_field
    labelled = bool(rows) and label_field in rows[0].fields
    ex = parse_rows(
        rows, text_field, f.text_pair_field, label_field if labelled else "", clf.labels
    )
    if ex.skipped.total:
        say("warning: " + ex.skipped.describe(input_path))
    data = ClassificationData(clf.tokenizer, ex, clf.max_length)
    probs = predict_probs(clf.model, data, Classify(len(clf.labels)), batch_size)
    offsets = None if clf.decision is None else np.asarray(clf.decision.offsets)
    picked = apply_offsets(probs, offsets)  # the tuned decision, else the argmax
    out_rows = []
    for i, p in enumerate(probs):
        r = {"line": ex.lines[i], "text": ex.texts[i], "label": clf.labels.names[int(picked[i])]}
        r.update({f"prob_{n}": round(float(q), 6) for n, q in zip(clf.labels.names, p)})
        out_rows.append(r)
    _write(Path(out), out_rows)
    res: dict[str, Any] = {
        "rows": len(rows),
        "predicted": len(out_rows),
        "skipped": ex.skipped.to_dict(),
    }
    if labelled:
        res["metrics"] = classification_metrics(
            data.labels.tolist(), probs, clf.labels.names, offsets
        )
    return res


@torch.no_grad()
def predict_probs(model, source, objective: Classify, batch_size: int, device="cpu") -> np.ndarray:
    """Class probabilities (N, C) of every item of `source`, in order (labels not needed)."""
    was = model.training
    model.eval()
    probs = []
    try:
        for i in range(0, len(source), batch_size):
            batch = objective.make_batch(source.batch(range(i, min(i + batch_size, len(source)))))
            out = objective.forward(model, batch.to(device))
            probs.append(torch.softmax(out["logits"].float(), -1).cpu().numpy())
    finally:
        model.train(was)
    return np.concatenate(probs)


def tune_on_val(model, val, n_classes: int, step: int, metric: str, batch_size: int, device="cpu"):
    """A `Decision` for checkpoint `step`: offsets tuned for `metric` on `val`'s predictions."""
    probs = predict_probs(model, val, Classify(n_classes), batch_size, device)
    return tuned_decision(val.labels.numpy(), probs, step, metric)
