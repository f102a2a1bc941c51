"""`finetune(...)`: the Python API behind `llmtrain finetune` — resolve the run config (the
base's model section < fine-tuning defaults < options < `--set`), build the `FinetuneTask`,
run the one `Trainer`, then score the best checkpoint on val and test and write the report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from llmtrain.config import load_json_file

# fine-tuning's loop defaults (a run's --set wins): short, evaluated and saved together so
# the best checkpoint by the chosen metric is always on disk
DEFAULTS = {
    "train": {
        "max_steps": 300,
        "batch_size": 32,
        "lr": 1e-4,
        "min_lr": 1e-5,
        "warmup_steps": 30,
        "eval_every": 50,
        "checkpoint_every": 50,
        "log_every": 10,
        "keep_last": 1,
    }
}
LORA_LR = {"lr": 1e-3, "min_lr": 1e-4}  # adapters take a larger step (Hu et al. 2021)


def resolve_config(
    base: str,
    task: str,
    data: str,
    options: dict[str, Any],
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    resume: bool = False,
):
    """The run config of a fine-tune: `options` are finetune.* keys (val, test, text_field,
    lora.rank, ...). On resume the run's own config.json is the base."""
    from llmtrain.config import deep_merge
    from llmtrain.finetune.base import load_base
    from llmtrain.train.config import load_run_config

    if resume and out is not None and (Path(out) / "config.json").is_file():
        return load_run_config(
            [], None, list(overrides), base=load_json_file(Path(out) / "config.json")
        )
    b = load_base(base)
    ft = {"task": task, "base": str(base), "data": str(data)}
    for k, v in options.items():
        if v is None:
            continue
        if k.startswith("lora."):
            ft.setdefault("lora", {})[k[5:]] = v
        else:
            ft[k] = v
    d: dict[str, Any] = deep_merge(DEFAULTS, {"model": dict(b.model), "finetune": ft})
    d["train"]["objective"] = b.objective  # the base's (valid for its architecture)
    if ft.get("lora", {}).get("rank"):
        d["train"].update(LORA_LR)
    return load_run_config([], None, list(overrides), base=d)


def finetune(
    base: str,
    *,
    task: str,
    data: str,
    out: str | Path,
    val: str | None = None,
    test: str | None = None,
    text_field: str | None = None,
    text_pair_field: str | None = None,
    label_field: str | None = None,
    lora_rank: int | None = None,
    overrides: Sequence[str] = (),
    resume: bool = False,
    show_progress: bool = True,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Fine-tune `base` (a llmtrain run or a local HF directory) for `task` ("classify" or
    "sft") on `data`; returns the summary (steps, best checkpoint, val/test metrics)."""
    from llmtrain.finetune.task import FinetuneTask
    from llmtrain.train.trainer import Trainer

    options = {
        "val": val,
        "test": test,
        "text_field": text_field,
        "text_pair_field": text_pair_field,
        "label_field": label_field,
        "lora.rank": lora_rank,
    }
    cfg = resolve_config(base, task, data, options, overrides, out, resume)
    ft = FinetuneTask(cfg, say)
    t = cfg.train
    if cfg.finetune.epochs > 0:
        t.max_steps = max(1, math.ceil(cfg.finetune.epochs * len(ft.source) / t.batch_size))
    trainer = Trainer(cfg, out, resume=resume, show_progress=show_progress, task=ft)
    say(
        f"fine-tuning ({cfg.finetune.task}): {len(ft.source)} training examples, "
        f"{t.max_steps} steps of {t.batch_size}; device {trainer.prec.device}"
    )
    result = trainer.fit()
    if not trainer.dist.is_rank0:
        return result
    summary = final_report(trainer, ft)
    return {"run_dir": str(out), **result, **summary}


def final_report(trainer, ft) -> dict[str, Any]:
    """Load the best checkpoint, score it on val and test, write finetune.json + pictures.

    The best weights go into a fresh unsharded model (the loader eval/export use), not into
    the trainer's: under FSDP those are shards that rank 0 cannot run alone."""
    from llmtrain.checkpoint.inference import load_trained
    from llmtrain.checkpoint.io import best_checkpoint, latest_checkpoint
    from llmtrain.finetune.report import write_report

    best = best_checkpoint(trainer.ckpt_root) or latest_checkpoint(trainer.ckpt_root)
    loaded = load_trained(best, trainer.prec.device)
    model = loaded.model
    decision = tune_decision(ft, model, loaded.step, trainer)
    metrics = {}
    for split in ("val", "test"):
        res = ft.evaluate(model, split, trainer.cfg.train.micro, trainer.prec.device)
        if res:
            metrics[split] = res
    report = {
        **ft.report,
        "task": ft.f.task,
        "base": ft.f.base,
        "best_checkpoint": str(best),
        "best_metric": ft.best_metric,
        "metrics": metrics,
    }
    if decision is not None:
        report["decision"] = asdict(decision)
    page = write_report(trainer.run_dir, report, ft.labels.names if ft.labels else None)
    ft.say(f"report: {trainer.run_dir / 'finetune.json'}, {page}")
    for split, m in metrics.items():
        if "macro_f1" in m:
            ft.say(
                f"{split}: accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}"
                + (f", ROC-AUC {m['roc_auc']:.4f}" if "roc_auc" in m else "")
            )
    return {"best_checkpoint": str(best), "metrics": json.loads(json.dumps(metrics))}


def tune_decision(ft, model, step: int, trainer):
    """With `finetune.tune_decision`: offsets tuned on the val predictions of the best
    checkpoint, saved (decision.json) and set on the objective that scores val and test."""
    import numpy as np

    from llmtrain.finetune.decision import DECISION_FILE, describe
    from llmtrain.finetune.predict import tune_on_val

    stale = trainer.run_dir / DECISION_FILE
    if ft.f.task != "classify" or ft.f.tune_decision == "none" or ft.val is None:
        stale.unlink(missing_ok=True)  # from an earlier run in this directory
        return None
    micro, device = trainer.cfg.train.micro, trainer.prec.device
    decision = tune_on_val(model, ft.val, len(ft.labels), step, ft.f.tune_decision, micro, device)
    decision.save(trainer.run_dir)
    ft.objective.offsets = np.asarray(decision.offsets)
    ft.say(describe(decision, ft.labels.names))
    return decision
