"""`write_report(runs, path)`: one self-contained HTML file (no network needed to open it) with
interactive plots of every metric against step, tokens or wall time, several runs overlaid,
each run's diagnosis, config, data manifest and checkpoints.

The page embeds its data as JSON and a small SVG plotting script (`assets/report.js`:
hover read-out, drag to zoom, double-click to reset, log scale, smoothing, legend toggles)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import html
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

from llmtrain.monitor.diagnosis import Finding, diagnose
from llmtrain.monitor.runs import RunData, finite

AXES = ("step", "tokens", "elapsed_sec")
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

# (chart title, keys drawn together, log scale by default); other numeric keys get a chart each
CHART_GROUPS: list[tuple[str, list[str], bool]] = [
    ("Loss (train, val)", ["loss", "val_loss"], False),
    ("Perplexity (train, val)", ["ppl", "val_ppl"], True),
    ("Validation bits per byte", ["val_bpb"], False),
    ("Learning rate", ["lr"], False),
    ("Gradient norm (global, before clipping)", ["grad_norm"], True),
    ("Parameter and update norms", ["param_norm", "update_norm"], True),
    ("Update / parameter norm ratio", ["update_ratio"], True),
    ("Throughput (tokens/s)", ["tokens_per_sec"], False),
    ("Model FLOPs utilisation", ["mfu"], False),
    ("Step time split (ms)", ["step_ms", "compute_ms", "data_wait_ms"], False),
    ("Data wait fraction", ["data_wait_frac"], False),
    ("Peak memory (GiB)", ["max_memory_gb", "max_memory_reserved_gb", "peak_rss_gb"], False),
    ("GPU utilisation (%)", ["gpu_util"], False),
    ("GPU memory used (GiB)", ["gpu_mem_used_gb"], False),
    ("GPU power (W)", ["gpu_power_w"], False),
    ("Skipped optimizer steps", ["skipped_steps"], False),
]
PREFIX_TITLES = {
    "grad_norm": ("Gradient norm per layer group", True),
    "update_ratio": ("Update / parameter ratio per layer group", True),
    "moe_max_load": ("MoE: largest expert's token share per layer", False),
    "moe_min_load": ("MoE: smallest expert's token share per layer", False),
    "moe_router_entropy": ("MoE: router entropy per layer", False),
}
SKIP = {"step", "tokens", "elapsed_sec", "time", "gpu_mem_total_gb", "memory_limit_gb"}


def _flat_moe(rec: dict[str, Any]) -> dict[str, Any]:
    """MoE lists -> per-layer scalars the plots can draw."""
    out = {k: v for k, v in rec.items() if k not in ("moe_load", "moe_router_entropy")}
    for i, load in enumerate(rec.get("moe_load") or []):
        if load:
            out[f"moe_max_load/layer{i}"], out[f"moe_min_load/layer{i}"] = max(load), min(load)
    for i, h in enumerate(rec.get("moe_router_entropy") or []):
        out[f"moe_router_entropy/layer{i}"] = h
    return out


def _columns(records: list[dict[str, Any]]) -> dict[str, list[float | None]]:
    """Records -> columns; non-finite values become null (JSON) and show as gaps."""
    recs = [_flat_moe(r) for r in records]
    keys = sorted({k for r in recs for k, v in r.items() if isinstance(v, (int, float))})
    cols: dict[str, list[float | None]] = {}
    for k in keys:
        cols[k] = [float(r[k]) if finite(r.get(k)) else None for r in recs]
    return cols


def chart_specs(runs_cols: list[dict[str, dict[str, list]]]) -> list[dict[str, Any]]:
    """Which charts the page draws: the fixed groups, then per-prefix and leftover keys;
    a chart appears only if some run has data for it."""
    present = {
        k
        for cols in runs_cols
        for src in cols.values()
        for k, v in src.items()
        if any(x is not None for x in v)
    }
    specs, used = [], set(SKIP)
    for title, keys, log in CHART_GROUPS:
        have = [k for k in keys if k in present]
        used.update(keys)
        if have:
            specs.append({"title": title, "keys": have, "log": log})
    prefixes: dict[str, list[str]] = {}
    for k in sorted(present - used):
        if "/" in k:
            prefixes.setdefault(k.split("/")[0], []).append(k)
    for prefix, keys in prefixes.items():
        title, log = PREFIX_TITLES.get(prefix, (f"{prefix} per group", False))
        if prefix.startswith("task_"):  # eval.tasks: accuracy beside the task's chance line
            title = f"Task {prefix.removeprefix('task_')}: accuracy vs chance"
        specs.append({"title": title, "keys": keys, "log": log})
        used.update(keys)
    for k in sorted(present - used):
        specs.append({"title": k, "keys": [k], "log": False})
    for i, s in enumerate(specs):
        s["id"] = f"chart{i}"
    return specs


def report_data(runs: list[RunData], findings: list[list[Finding]] | None = None) -> dict:
    findings = findings if findings is not None else [diagnose(r) for r in runs]
    out_runs = []
    for i, (run, found) in enumerate(zip(runs, findings)):
        out_runs.append(
            {
                "name": run.name,
                "dir": str(run.run_dir),
                "color": COLORS[i % len(COLORS)],
                "series": {"train": _columns(run.train), "eval": _columns(run.evals)},
                "events": run.events,
                "checkpoints": [{"step": c.step, "path": str(c.path)} for c in run.checkpoints],
                "config": run.config,
                "manifest": run.manifest,
                "findings": [f.to_dict() for f in found],
                "summary": _summary(run),
                "classifier": classifier_scores(run),
            }
        )
    specs = chart_specs([r["series"] for r in out_runs])
    return {
        "runs": out_runs,
        "charts": specs,
        "axes": list(AXES),
        "generated": _dt.datetime.now().isoformat(timespec="seconds"),
    }


def _summary(run: RunData) -> dict[str, Any]:
    last = run.train[-1] if run.train else {}
    vals = [r for r in run.evals if finite(r.get("val_loss"))]
    best = min(vals, key=lambda r: r["val_loss"]) if vals else None
    tps = [r["tokens_per_sec"] for r in run.train[2:] if finite(r.get("tokens_per_sec"))]
    return {
        "step": run.step,
        "max_steps": run.max_steps,
        "tokens": last.get("tokens"),
        "elapsed_sec": last.get("elapsed_sec"),
        "last_loss": last.get("loss"),
        "best_val_loss": best["val_loss"] if best else None,
        "best_val_step": best["step"] if best else None,
        "last_val_bpb": vals[-1].get("val_bpb") if vals else None,
        "median_tokens_per_sec": sorted(tps)[len(tps) // 2] if tps else None,
        "checkpoints": len(run.checkpoints),
    }


CLASSIFIER_KEYS = ("accuracy", "macro_f1", "weighted_f1", "roc_auc", "per_class", "confusion")


def classifier_scores(run: RunData) -> dict[str, Any] | None:
    """A fine-tuned classifier's scores for the report: val/test of its best checkpoint
    (finetune.json, written at the end), else the last eval's val scores (a run still going);
    None for any other run. Label names from labels.json, else the per-class keys."""
    splits: dict[str, dict[str, Any]] = {}
    try:
        final = json.loads((run.run_dir / "finetune.json").read_text(encoding="utf-8"))
        splits = {k: v for k, v in final.get("metrics", {}).items() if "confusion" in v}
    except (OSError, ValueError):
        pass
    if not splits:
        last = next((r for r in reversed(run.evals) if "val_confusion" in r), None)
        if last is None:
            return None
        splits = {f"val (step {last['step']})": {k[4:]: v for k, v in last.items()
                                                 if k.startswith("val_")}}  # fmt: skip
    names = None
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        names = json.loads((run.run_dir / "labels.json").read_text(encoding="utf-8"))["labels"]
    scores = {split: {k: m[k] for k in CLASSIFIER_KEYS if k in m} for split, m in splits.items()}
    first = next(iter(scores.values()))
    return {"labels": names or list(first.get("per_class", {})), "splits": scores}


def _json_for_script(data: Any) -> str:
    text = json.dumps(data, default=_jsonable, allow_nan=False)
    # inside <script> a literal "</" could close the tag; escape it (JSON stays identical)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return str(v)


def render_html(runs: list[RunData], findings: list[list[Finding]] | None = None) -> str:
    data = report_data(runs, findings)
    data = json.loads(json.dumps(data, default=_jsonable))  # NaN -> null everywhere
    assets = resources.files("llmtrain.monitor") / "assets"
    script = (assets / "report.js").read_text(encoding="utf-8")
    style = (assets / "report.css").read_text(encoding="utf-8")
    title = "llmtrain report: " + ", ".join(r.name for r in runs)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{style}</style></head>
<body>
<header><h1>{html.escape(title)}</h1>
<div id="controls"></div></header>
<main><section id="summary"></section><section id="diagnosis"></section>
<section id="classifier"></section><section id="charts"></section><section id="details"></section></main>
<script id="report-data" type="application/json">{_json_for_script(data)}</script>
<script>{script}</script>
</body></html>
"""


def write_report(runs: list[RunData], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(runs), encoding="utf-8")
    return path
