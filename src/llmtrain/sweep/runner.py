"""`run_sweep(spec_path, out, parallel=N)`: the whole `llmtrain sweep` command. Validates the
spec, opens (or resumes) the study, recovers trials a dead process left running, runs the
trials in this process or in N worker processes placed by `resources.plan_slots`, then prints
the results table and writes `best_config.json` and `report.html`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from llmtrain.errors import LLMTrainError
from llmtrain.sweep import report
from llmtrain.sweep.resources import plan_slots
from llmtrain.sweep.spec import load_spec
from llmtrain.sweep.study import (
    finished,
    open_study,
    read_spec,
    recover_dead_trials,
    run_worker,
    save_spec,
)
from llmtrain.utils.io import atomic_write_json


def run_sweep(
    spec_path: str | Path,
    out: str | Path,
    parallel: int = 1,
    data: str | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Run (or resume) a sweep; returns the summary printed at the end."""
    out = Path(out)
    spec = load_spec(spec_path, data)
    out.mkdir(parents=True, exist_ok=True)
    save_spec(spec, out)
    study = open_study(spec, out)  # creates the tables before any worker starts
    if not study.get_trials(deepcopy=False):
        for params in spec.start:  # known values first (e.g. a planned config)
            study.enqueue_trial(params)
    recover_dead_trials(study)
    done = len(finished(study))
    print(
        f"sweep: {len(spec.params)} parameter(s) ({', '.join(spec.params)}), {spec.trials} "
        f"trials x {spec.steps} steps, {spec.sampler} sampler, {spec.pruner} pruner, "
        f"{spec.direction} {spec.metric}; study {out / 'study.db'}"
        + (f"; resuming: {done} trial(s) already finished" if done else "")
    )
    if parallel <= 1:
        run_worker(out)
    else:
        _run_workers(out, plan_slots(parallel, device))
    return summarize(out)


def _run_workers(out: Path, slots: list) -> None:
    import llmtrain

    src = str(Path(llmtrain.__file__).resolve().parents[1])  # this llmtrain in the workers too
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    procs = []
    for s in slots:
        print(f"sweep: worker {s.index} on {s.label}")
        env = {**os.environ, **s.env, "PYTHONPATH": path}
        cmd = [sys.executable, "-m", "llmtrain.sweep.study", str(out), str(s.index),
               str(s.threads or 0), str(len(slots))]  # fmt: skip
        procs.append(subprocess.Popen(cmd, env=env))
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        raise
    bad = [(i, c) for i, c in enumerate(codes) if c != 0]
    if bad:
        i, c = bad[0]
        raise LLMTrainError(
            f"sweep worker {i} exited with code {c} (its error is above); rerun the same "
            "command to resume: finished trials are kept"
        )


def summarize(out: str | Path, quiet: bool = False) -> dict[str, Any]:
    """Print the results table; write best_config.json and report.html from the study."""
    out = Path(out)
    spec = read_spec(out)
    study = open_study(spec, out, load_only=True)
    rows = report.trial_rows(study, spec)
    steps = report.steps_summary(rows, spec)
    say = (lambda *a: None) if quiet else print
    say(report.format_table(rows, spec))
    frac = f"{steps['fraction']:.0%}" if steps["fraction"] is not None else "-"
    say(
        f"trained {steps['steps_trained']:,} of {steps['steps_if_unpruned']:,} steps "
        f"({frac}; {steps['pruned']} of {steps['finished']} trials pruned) "
        f"in {steps['seconds']:.0f} s of trial time"
    )
    result: dict[str, Any] = {"out": str(out), **steps}
    complete = [r for r in rows if r["state"] == "complete"]
    if complete:
        best = complete[0]
        atomic_write_json(out / "best_config.json", report.best_config(study, out))
        result |= {"best_trial": best["number"], "best_value": best["value"],
                   "best_params": best["params"]}  # fmt: skip
        say(f"best: trial {best['number']} {spec.metric} {best['value']:.4f} {best['params']}")
    html = report.write_html(study, spec, out)
    say(
        f"outputs: study {out / 'study.db'}, trials {out / 'trials'}, report {html}"
        + (f", best config {out / 'best_config.json'}" if complete else "")
    )
    return result
