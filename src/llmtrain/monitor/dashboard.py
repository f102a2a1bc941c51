"""The live terminal dashboard of `llmtrain monitor RUN_DIR... [--follow]`: for each run its
step and ETA, loss and val-loss sparklines, the latest metrics, the checkpoints written and
the diagnosis' warnings. It tails metrics.jsonl, so it works on a run that is still going
(or on one that finished long ago) and never touches the training process."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from llmtrain.monitor.diagnosis import Finding, diagnose, fmt
from llmtrain.monitor.runs import MetricsTail, RunData, finite, load_run, refresh_meta

BARS = "▁▂▃▄▅▆▇█"
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def sparkline(values: list[float], width: int = 40) -> str:
    """Unicode sparkline of `values` resampled to at most `width` buckets (bucket means);
    non-finite points show as '×'."""
    if not values:
        return ""
    n = min(width, len(values))
    buckets = [values[i * len(values) // n : (i + 1) * len(values) // n] for i in range(n)]
    means = [
        sum(b) / len(b) if all(math.isfinite(x) for x in b) else math.nan for b in buckets if b
    ]
    good = [m for m in means if math.isfinite(m)]
    if not good:
        return "×" * len(means)
    lo, hi = min(good), max(good)
    out = []
    for m in means:
        if not math.isfinite(m):
            out.append("×")
        else:
            level = 0 if hi == lo else round((m - lo) / (hi - lo) * (len(BARS) - 1))
            out.append(BARS[level])
    return "".join(out)


def hms(sec: float | None) -> str:
    if sec is None or not math.isfinite(sec):
        return "-"
    sec = int(sec)
    h, rem = divmod(sec, 3600)
    return f"{h}h{rem // 60:02d}m{rem % 60:02d}s" if h else f"{rem // 60}m{rem % 60:02d}s"


def _curve_row(run: RunData, key: str, label: str, width: int) -> list[Any]:
    pts = run.series(key)
    if not pts:
        return [label, "-", "", ""]
    vals = [v for _, v in pts]
    good = [(s, v) for s, v in pts if math.isfinite(v)]
    best = min(good, key=lambda p: p[1]) if good else None
    note = f"min {fmt(best[1])} @ {best[0]}" if best else ""
    return [label, Text(fmt(vals[-1]), style="bold"), Text(sparkline(vals, width), "green"), note]


def _task_row(run: RunData, key: str, width: int) -> list[Any]:
    """`task_<name>/acc` of eval.tasks: the last accuracy, its curve, the task's chance."""
    vals = [float(r[key]) for r in run.evals if finite(r.get(key))]
    chance = run.evals[-1].get(key.removesuffix("/acc") + "/chance")
    label = key.removeprefix("task_").removesuffix("/acc") + " acc"
    note = f"chance {fmt(chance)}" if finite(chance) else ""
    return [label, Text(fmt(vals[-1]), style="bold"), Text(sparkline(vals, width), "cyan"), note]


def _metrics_line(rec: dict[str, Any]) -> str:
    parts = []
    spec = [
        ("lr", "lr", lambda v: f"{v:.2e}"),
        ("grad_norm", "grad norm", fmt),
        ("tokens_per_sec", "tok/s", lambda v: f"{v:,.0f}"),
        ("mfu", "MFU", lambda v: f"{100 * v:.1f}%"),
        ("step_ms", "step", lambda v: f"{v:.0f} ms"),
        ("data_wait_frac", "data wait", lambda v: f"{100 * v:.1f}%"),
        ("max_memory_gb", "mem", lambda v: f"{v:.2f} GiB"),
        ("peak_rss_gb", "rss", lambda v: f"{v:.2f} GiB"),
        ("gpu_util", "GPU", lambda v: f"{v:.0f}%"),
        ("gpu_power_w", "power", lambda v: f"{v:.0f} W"),
        ("update_ratio", "update/param", fmt),
        ("skipped_steps", "skipped", lambda v: f"{int(v)}"),
    ]
    for key, label, f in spec:
        if finite(rec.get(key)):
            parts.append(f"{label} {f(rec[key])}")
    return " | ".join(parts)


def render_run(run: RunData, findings: list[Finding], width: int = 100) -> RenderableType:
    spark_w = max(10, min(60, width - 45))
    last = run.train[-1] if run.train else {}
    total = run.max_steps or max(run.step, 1)
    head = Table.grid(padding=(0, 1))
    head.add_row(
        Text(f"step {run.step}/{total}", style="bold"),
        ProgressBar(total=total, completed=min(run.step, total), width=max(10, width // 4)),
        f"{100 * min(run.step, total) / total:.0f}%",
        f"elapsed {hms(last.get('elapsed_sec'))}",
        f"ETA {hms(run.eta_sec()) if run.step < total else 'done'}",
        f"tokens {last.get('tokens', 0):,}",
    )
    curves = Table.grid(padding=(0, 1))
    curves.add_row(*_curve_row(run, "loss", "loss", spark_w))
    curves.add_row(*_curve_row(run, "val_loss", "val loss", spark_w))
    if run.evals and finite(run.evals[-1].get("val_bpb")):
        curves.add_row("val bpb", fmt(run.evals[-1]["val_bpb"]), "", "")
    for key in sorted(k for k in (run.evals[-1] if run.evals else {}) if k.endswith("/acc")):
        curves.add_row(*_task_row(run, key, spark_w))  # eval.tasks: accuracy beside chance
    parts: list[RenderableType] = [head, curves, Text(_metrics_line(last), style="dim")]
    if run.checkpoints:
        now = time.time()
        ck = ", ".join(
            f"{c.path.name} ({hms(now - c.mtime)} ago)" for c in reversed(run.checkpoints[-4:])
        )
        parts.append(Text(f"checkpoints ({len(run.checkpoints)}): {ck}"))
    for f in findings:
        parts.append(Text(f"{f.severity}: {f.title} — {f.evidence}", SEVERITY_STYLE[f.severity]))
    if not findings and len(run.train) >= 10:
        parts.append(Text("diagnosis: no problems found", style="green"))
    return Panel(Group(*parts), title=f"[bold]{run.name}[/] {run.run_dir}", title_align="left")


class Dashboard:
    """Keeps one `RunData` per run up to date from its growing metrics.jsonl."""

    def __init__(self, run_dirs: list[Path], checkpoint_dir: str | Path | None = None):
        self.checkpoint_dir = checkpoint_dir
        self.runs = [RunData(run_dir=d, name=d.resolve().name) for d in run_dirs]
        self.tails = [MetricsTail(d / "metrics.jsonl") for d in run_dirs]
        self.findings: list[list[Finding]] = [[] for _ in run_dirs]
        self._diagnosed_at = 0.0

    def poll(self) -> bool:
        """Read what was appended since the last poll; True when anything changed."""
        changed = False
        for i, (run, tail) in enumerate(zip(self.runs, self.tails)):
            new = tail.poll()
            if tail.reset:
                self.runs[i] = run = load_run(run.run_dir, self.checkpoint_dir)
                changed = True
                continue
            for rec in new:
                run.add(rec)
            n_ckpt = len(run.checkpoints)
            refresh_meta(run, self.checkpoint_dir)
            changed |= bool(new) or len(run.checkpoints) != n_ckpt
        if changed or not self._diagnosed_at or time.time() - self._diagnosed_at > 10:
            self.findings = [diagnose(r) for r in self.runs]
            self._diagnosed_at = time.time()
        return changed

    def renderable(self, width: int = 100) -> RenderableType:
        return Group(*(render_run(r, f, width) for r, f in zip(self.runs, self.findings)))

    def follow(self, console: Console, interval: float = 1.0, until_done: bool = False) -> None:
        """Redraw on every change until Ctrl-C (or, with `until_done`, all runs finished)."""
        from rich.live import Live

        self.poll()
        with Live(self.renderable(console.width), console=console, auto_refresh=False) as live:
            while True:
                if self.poll():
                    live.update(self.renderable(console.width), refresh=True)
                if until_done and all(r.max_steps and r.step >= r.max_steps for r in self.runs):
                    return
                time.sleep(interval)
