"""The evaluation suite over one loaded model: multiple-choice tasks, generation tasks and
text perplexity, each result a flat dict, plus `checkpoint_curve` over every kept checkpoint.

`run_suite(model, tokenizer, SuiteSpec(...))` returns the result rows (tasks, then the summary
line, generation scores, perplexities); `save_results` writes them, per-item details and the
generated outputs into one folder. The CLI (`llmtrain eval RUN --tasks ...`) is a shell over it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from llmtrain.errors import ConfigError
from llmtrain.eval.generation_metrics import read_generation_task, text_metrics
from llmtrain.eval.multiple_choice import FEWSHOT_SEED, require_causal, score_task, summary
from llmtrain.eval.perplexity import file_perplexity
from llmtrain.eval.tasks import load_task


@dataclass
class SuiteSpec:
    tasks: list[str] = field(default_factory=list)  # multiple-choice task files
    format: str = "auto"
    shots: int = 0
    limit: int | None = None
    seed: int = FEWSHOT_SEED
    generate: list[str] = field(default_factory=list)  # {"prompt", "reference"} files
    max_new_tokens: int = 64
    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    stop: str | None = "\n"
    lang: str = "auto"
    text: list[str] = field(default_factory=list)  # files for sliding-window perplexity
    stride: int | None = None
    batch_size: int = 32
    device: str = "cpu"
    quiet: bool = False


Generate = Callable[[list[str], SuiteSpec], list[str]]


def run_suite(
    model: nn.Module,
    tokenizer: Any,
    spec: SuiteSpec,
    emit: Callable[[dict[str, Any]], None] = lambda row: None,
    generate: Generate | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Every requested evaluation; `emit` sees each row as soon as it exists. Returns
    {"tasks": [...], "generation": [...], "text": [...]} ("items"/"outputs" hold details).
    Generation tasks need `generate(prompts, spec) -> outputs` (the generation package sits
    above this one: `llmtrain.generation.outputs.generate_outputs` behind a lambda)."""
    require_causal(model)  # one clear refusal before any file is read for an encoder
    out: dict[str, list[dict[str, Any]]] = {"tasks": [], "generation": [], "text": []}
    tasks = [load_task(p, spec.format, spec.limit) for p in spec.tasks]  # all errors first
    for task in tasks:
        res = score_task(
            model,
            tokenizer,
            task,
            shots=spec.shots,
            seed=spec.seed,
            batch_size=spec.batch_size,
            device=spec.device,
            quiet=spec.quiet,
        )
        out["tasks"].append(res)
        emit(res)
    if out["tasks"]:
        emit(summary(out["tasks"]))
    if spec.generate and generate is None:
        raise ConfigError("generation tasks need a generate function (see run_suite)")
    for path in spec.generate:
        res = _generation(path, spec, generate)
        out["generation"].append(res)
        emit(res)
    for path in spec.text:
        res = file_perplexity(
            model,
            tokenizer,
            path,
            stride=spec.stride,
            batch_size=max(1, spec.batch_size // 4),
            device=spec.device,
            quiet=spec.quiet,
        )
        out["text"].append(res)
        emit(res)
    return out


def _generation(path: str, spec: SuiteSpec, generate: Generate) -> dict[str, Any]:
    rows = read_generation_task(path, spec.limit)
    outputs = generate([r["prompt"] for r in rows], spec)
    scores = text_metrics(outputs, [r["reference"] for r in rows], spec.lang)
    mode = "greedy" if spec.temperature == 0 else f"sampled T={spec.temperature}"
    details = [{**r, "output": o} for r, o in zip(rows, outputs, strict=True)]
    return {"generate": Path(path).stem, "decoding": mode, **scores, "outputs": details}


def public(row: dict[str, Any]) -> dict[str, Any]:
    """A result row without its per-item details (what the console prints)."""
    return {k: v for k, v in row.items() if k not in ("items", "outputs")}


def save_results(results: dict[str, list[dict[str, Any]]], folder: str | Path) -> list[Path]:
    """scores.jsonl (one line per result) plus per-item files: `<task>.items.jsonl` (the
    log-likelihoods and predictions) and `<name>.generations.jsonl` (prompt, reference,
    output). Written to temporary names and renamed, so nothing half-written looks done."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    rows = [public(r) for r in results["tasks"]]  # in the order they were printed
    rows += [summary(results["tasks"])] if results["tasks"] else []
    rows += [public(r) for r in results["generation"] + results["text"]]
    written.append(_write_jsonl(folder / "scores.jsonl", rows))
    for r in results["tasks"]:
        written.append(_write_jsonl(folder / f"{r['task']}.items.jsonl", r["items"]))
    for r in results["generation"]:
        written.append(_write_jsonl(folder / f"{r['generate']}.generations.jsonl", r["outputs"]))
    return written


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


@torch.no_grad()
def checkpoint_curve(
    checkpoints: list[Path],
    spec: SuiteSpec,
    load: Callable[[Path], tuple[nn.Module, Any, int]],
    emit: Callable[[dict[str, Any]], None] = lambda row: None,
) -> list[dict[str, Any]]:
    """Multiple-choice scores of every checkpoint: rows {"step", "task", "acc", ...}.
    `load(path)` gives (model, tokenizer, step)."""
    rows = []
    for ckpt in checkpoints:
        model, tokenizer, step = load(ckpt)
        res = run_suite(
            model, tokenizer, SuiteSpec(**{**spec.__dict__, "generate": [], "text": []})
        )
        for r in res["tasks"]:
            row = {"step": step, "checkpoint": str(ckpt), **public(r)}
            rows.append(row)
            emit(row)
    return rows


def plot_curve(rows: list[dict[str, Any]], path: str | Path, metric: str = "acc") -> Path:
    """One PNG: `metric` against step, a line per task, each with its chance level dashed."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("the checkpoint plot needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for i, task in enumerate(dict.fromkeys(r["task"] for r in rows)):
        pts = sorted((r["step"], r[metric], r["chance"]) for r in rows if r["task"] == task)
        color = f"C{i}"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=color, label=task)
        ax.axhline(pts[0][2], color=color, linestyle="--", linewidth=1, label=f"{task} chance")
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
