"""Agreement with lm-evaluation-harness: score a task's items with lm-eval's `HFLM` on an
exported Hugging Face directory, offline, through a local task definition.

`harness_scores(hf_dir, task)` writes the items as JSONL plus a task YAML (`dataset_path:
json`, fields used verbatim, the task's delimiter as `target_delimiter`) to a temporary folder,
runs `lm_eval.simple_evaluate` zero-shot and returns per-item log-likelihoods and accuracies.
`compare(ours, theirs)` gives the largest per-choice difference and whether the predictions
agree. lm-eval (`pip install 'llmtrain[harness]'`) is imported here only.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from llmtrain.errors import ConfigError
from llmtrain.eval.multiple_choice import encode_pair
from llmtrain.eval.tasks import Task

METRICS = ("acc", "acc_norm", "acc_bytes")


def _require_lm_eval() -> Any:
    try:
        import lm_eval
    except ImportError:
        raise ConfigError(
            "the agreement check needs lm-evaluation-harness: pip install 'llmtrain[harness]'"
        ) from None
    return lm_eval


def write_task_definition(task: Task, folder: Path) -> str:
    """The items as {"query", "choices", "gold"} JSONL and a YAML task that reads them;
    returns the task's name. All items must share one delimiter (lm-eval has one per task)."""
    delims = {it.delimiter for it in task.items}
    if len(delims) != 1:
        raise ConfigError(f"task {task.name} mixes delimiters {sorted(delims)}; lm-eval needs one")
    name = "llmtrain_" + "".join(c if c.isalnum() else "_" for c in task.name).lower()
    data = folder / f"{name}.jsonl"
    with data.open("w", encoding="utf-8") as f:
        for it in task.items:
            row = {"query": it.query, "choices": list(it.choices), "gold": it.gold}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    spec = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data.resolve())}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "query",
        "doc_to_choice": "choices",
        "doc_to_target": "gold",
        "target_delimiter": delims.pop(),
        "metric_list": [{"metric": m, "aggregation": "mean"} for m in METRICS],
    }
    # YAML is a superset of JSON: the definition needs no YAML writer
    (folder / f"{name}.yaml").write_text(json.dumps(spec, ensure_ascii=False, indent=1) + "\n")
    return name


def harness_scores(hf_dir: str | Path, task: Task, batch_size: int = 16) -> dict[str, Any]:
    """lm-eval's zero-shot scores of `task` on the HF model in `hf_dir` (CPU, fp32):
    {"lls": per-item lists of per-choice log-likelihoods, "acc", "acc_norm", "acc_bytes"}."""
    lm_eval = _require_lm_eval()
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="llmtrain_lm_eval_") as tmp:
        name = write_task_definition(task, Path(tmp))
        lm = HFLM(pretrained=str(hf_dir), device="cpu", batch_size=batch_size, dtype="float32")
        out = lm_eval.simple_evaluate(
            model=lm,
            tasks=[name],
            task_manager=TaskManager(include_path=tmp, include_defaults=False),
            num_fewshot=0,
            log_samples=True,
            verbosity="ERROR",
        )
    samples = sorted(out["samples"][name], key=lambda s: s["doc_id"])
    lls = [[float(r[0][0]) for r in s["resps"]] for s in samples]
    scores = out["results"][name]
    return {"lls": lls, **{m: float(scores[f"{m},none"]) for m in METRICS}}


def within_window(task: Task, tokenizer: Any, block_size: int) -> tuple[Task, int]:
    """The task without items that have a choice longer than the window (lm-eval stops with
    an assertion on those; llmtrain scores their tail), and how many were left out."""
    kept = []
    for item in task.items:
        conts = [encode_pair(tokenizer, item.query, item.delimiter + c)[1] for c in item.choices]
        if all(len(c) <= block_size for c in conts):
            kept.append(item)
    return Task(task.name, task.path, task.format, kept), len(task.items) - len(kept)


def compare(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """Largest |Δ log-likelihood| over all choices, and the accuracies side by side."""
    mine = [it["lls"] for it in ours["items"]]
    if len(mine) != len(theirs["lls"]):
        raise ConfigError(f"{len(mine)} items scored here but {len(theirs['lls'])} by lm-eval")
    diff = max(
        abs(a - b)
        for x, y in zip(mine, theirs["lls"], strict=True)
        for a, b in zip(x, y, strict=True)
    )
    res: dict[str, Any] = {"task": ours["task"], "n": ours["n"], "max_abs_ll_diff": diff}
    for m in METRICS:
        res[m] = ours[m]
        res[f"lm_eval_{m}"] = theirs[m]
    res["same_accuracy"] = all(ours[m] == theirs[m] for m in METRICS)
    return res
