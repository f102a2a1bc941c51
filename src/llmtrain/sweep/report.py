"""What a sweep produced, read back from its study: `trial_rows` (one dict per trial),
`format_table` (the console table, best first), `best_config` (the best trial's run config,
usable with `llmtrain train --config`), `importances` (optuna.importance) and `write_html`
(best trials, parameter importance and the trials' loss curves, in the monitor's page style)."""

from __future__ import annotations

import html
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

from llmtrain.errors import ConfigError
from llmtrain.sweep.spec import SweepSpec


def _value(t: Any) -> float | None:
    if t.value is not None:
        return float(t.value)
    if t.intermediate_values:  # a pruned trial: its last reported value
        return float(t.intermediate_values[max(t.intermediate_values)])
    return None


def trial_rows(study: Any, spec: SweepSpec) -> list[dict[str, Any]]:
    """Every trial, best first (complete, then pruned, by value; then the rest)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "value": _value(t),
                "steps": t.user_attrs.get("steps"),
                "seconds": t.user_attrs.get("seconds"),
                "run_dir": t.user_attrs.get("run_dir"),
                "params": dict(t.params),
                "error": t.user_attrs.get("error"),
            }
        )
    sign = 1 if spec.direction == "minimize" else -1
    order = {"complete": 0, "pruned": 1}

    def key(r: dict[str, Any]) -> tuple:
        v = r["value"]
        bad = v is None or not math.isfinite(v)
        return (order.get(r["state"], 2), bad, sign * v if not bad else 0, r["number"])

    return sorted(rows, key=key)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-3 or abs(v) >= 1e4 else f"{v:.4f}".rstrip("0").rstrip(".")
    return "-" if v is None else str(v)


def format_table(rows: list[dict[str, Any]], spec: SweepSpec, limit: int = 25) -> str:
    keys = list(spec.params)
    head = ["#", "state", spec.metric, "steps", "sec", *keys]
    body = [
        [str(r["number"]), r["state"], _fmt(r["value"]), _fmt(r["steps"]), _fmt(r["seconds"])]
        + [_fmt(r["params"].get(k)) for k in keys]
        for r in rows[:limit]
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in [head, *body]]
    if len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more trials (all in the HTML page)")
    return "\n".join(lines)


def steps_summary(rows: list[dict[str, Any]], spec: SweepSpec) -> dict[str, Any]:
    """Steps actually trained vs every finished trial run to the end: what pruning saved."""
    done = [r for r in rows if r["state"] in ("complete", "pruned")]
    trained = sum(r["steps"] or 0 for r in done)
    full = len(done) * spec.steps
    return {
        "finished": len(done),
        "pruned": sum(r["state"] == "pruned" for r in done),
        "steps_trained": trained,
        "steps_if_unpruned": full,
        "fraction": trained / full if full else None,
        "seconds": sum(r["seconds"] or 0 for r in done),
    }


def best_config(study: Any, out: Path) -> dict[str, Any]:
    """The run config of the best complete trial (train.threads cleared: a sweep setting)."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise ConfigError(f"{out}: no trial has completed yet; run or resume the sweep first")
    best = study.best_trial
    path = out / best.user_attrs["run_dir"] / "config.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    cfg.get("train", {})["threads"] = None
    return cfg


def importances(study: Any) -> dict[str, float]:
    """fANOVA importance of each parameter for the metric (needs 2+ complete trials)."""
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2 or not complete[0].params:
        return {}
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)  # Hutter et al. 2014
    try:
        return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))
    except (RuntimeError, ValueError):  # e.g. a parameter that never varied
        return {}


def write_html(study: Any, spec: SweepSpec, out: Path, path: Path | None = None) -> Path:
    """One self-contained page: summary, best trials, importance bars, every trial's curves."""
    from llmtrain.monitor.report import _json_for_script, _jsonable, report_data
    from llmtrain.monitor.runs import load_run

    rows = trial_rows(study, spec)
    runs = []
    for r in rows:
        d = out / (r["run_dir"] or "-")
        if r["state"] in ("complete", "pruned") and (d / "metrics.jsonl").is_file():
            run = load_run(d)
            run.name = f"#{r['number']} {r['state']}"
            runs.append(run)
    data = report_data(runs, [[] for _ in runs])
    keep = {"Loss (train, val)", "Validation bits per byte", "Learning rate"}
    data["charts"] = [c for c in data["charts"] if c.get("title") in keep] or data["charts"]
    data = json.loads(json.dumps(data, default=_jsonable))
    assets = resources.files("llmtrain.monitor") / "assets"
    title = f"llmtrain sweep: {out}"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{(assets / "report.css").read_text(encoding="utf-8")}
.bar {{ background: #1f77b4; height: 12px; display: inline-block; }}</style></head>
<body><header><h1>{html.escape(title)}</h1><div id="controls"></div></header>
<main>{_summary_html(rows, spec)}{_importance_html(importances(study))}
<h2>Trials: curves (click a legend entry to hide a trial)</h2>
<section id="summary"></section><section id="diagnosis"></section>
<section id="charts"></section><section id="details"></section></main>
<script id="report-data" type="application/json">{_json_for_script(data)}</script>
<script>{(assets / "report.js").read_text(encoding="utf-8")}</script>
</body></html>
"""
    path = path or out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def _summary_html(rows: list[dict[str, Any]], spec: SweepSpec) -> str:
    s = steps_summary(rows, spec)
    frac = f"{s['fraction']:.0%}" if s["fraction"] is not None else "-"
    intro = (
        f"<p>{s['finished']} finished trials ({s['pruned']} pruned by {spec.pruner}), "
        f"sampler {spec.sampler}, {spec.direction} {spec.metric}; steps trained "
        f"{s['steps_trained']:,} of {s['steps_if_unpruned']:,} without pruning ({frac}).</p>"
    )
    keys = list(spec.params)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["#", "state", spec.metric, "steps",
                                                            "seconds", *keys])  # fmt: skip
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in [r["number"], r["state"],
                  r["value"], r["steps"], r["seconds"], *(r["params"].get(k) for k in keys)])
        + "</tr>"
        for r in rows[:10]
    )  # fmt: skip
    table = f'<table class="summary"><tr>{head}</tr>{body}</table>'
    return f"<h2>Best trials</h2>{intro}{table}"


def _importance_html(imp: dict[str, float]) -> str:
    if not imp:
        return "<h2>Parameter importance</h2><p>needs two or more complete trials</p>"
    rows = "".join(
        f'<tr><td>{html.escape(k)}</td><td>{v:.3f}</td><td style="text-align:left">'
        f'<span class="bar" style="width:{max(1, int(300 * v))}px"></span></td></tr>'
        for k, v in imp.items()
    )
    return (
        "<h2>Parameter importance (fANOVA, optuna.importance)</h2>"
        f'<table class="summary"><tr><th>parameter</th><th>importance</th><th></th></tr>'
        f"{rows}</table>"
    )
