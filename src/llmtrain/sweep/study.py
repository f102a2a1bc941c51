"""The Optuna side of a sweep: the study in `<out>/study.db` (SQLite, shared by every worker
process), its sampler and pruner, recovery of trials whose process died, and `run_worker`,
which asks the study for trials and trains each with the one `Trainer` into
`<out>/trials/NNNN/` (a normal run directory), reporting the val metric after every eval so
the pruner can stop it early (`on_eval` raising `StopRun`)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmtrain.errors import ConfigError, LLMTrainError
from llmtrain.sweep.spec import Param, SweepSpec

SPEC_FILE = "sweep.json"  # the validated spec, as the workers and `--best` read it
STUDY_FILE = "study.db"
HEARTBEAT_SEC = 10  # a trial whose worker stops beating for 6x this is failed and retried


def save_spec(spec: SweepSpec, out: Path) -> None:
    """Write the spec beside the study; a rerun must search the same space (trials may grow)."""
    from llmtrain.utils.io import atomic_write_json

    path = out / SPEC_FILE
    new = spec.to_dict()
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        fixed = ("data", "base", "params", "steps", "eval_every", "metric", "direction", "name")
        diff = [k for k in fixed if old.get(k) != new[k]]  # trials, pruner, seed may change
        if diff:
            raise ConfigError(
                f"{out} holds a sweep started from a different spec ({', '.join(diff)} differ); "
                "rerun with the same spec to resume it, or choose a new --out"
            )
    atomic_write_json(path, new)


def read_spec(out: str | Path) -> SweepSpec:
    path = Path(out) / SPEC_FILE
    if not path.is_file():
        raise ConfigError(f"{out} is not a sweep directory (no {SPEC_FILE}); run `llmtrain sweep`")
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["params"] = {k: Param(**p) for k, p in raw["params"].items()}
    return SweepSpec(**raw)


def open_study(spec: SweepSpec, out: Path, load_only: bool = False) -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError("llmtrain sweep needs Optuna: pip install 'llmtrain[sweep]'") from None
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own one line per trial
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if load_only and not (out / STUDY_FILE).is_file():
        raise ConfigError(f"{out} has no {STUDY_FILE}; run `llmtrain sweep SPEC --out {out}`")
    storage = RDBStorage(
        f"sqlite:///{(out / STUDY_FILE).resolve()}",
        engine_kwargs={"connect_args": {"timeout": 60}},  # several workers write to it
        heartbeat_interval=HEARTBEAT_SEC,
        grace_period=6 * HEARTBEAT_SEC,
        heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2),
    )
    return optuna.create_study(
        study_name=spec.name,
        storage=storage,
        sampler=make_sampler(spec),
        pruner=make_pruner(spec),
        direction=spec.direction,
        load_if_exists=True,
    )


def make_sampler(spec: SweepSpec, salt: int = 0) -> Any:
    """The spec's sampler, its seed `spec.seed + salt` (a fresh one-worker sweep: the seed)."""
    import optuna

    seed = spec.seed + salt

    if spec.sampler == "grid":
        space = {k: p.grid_values() for k, p in spec.params.items()}
        return optuna.samplers.GridSampler(space, seed=seed)
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # TPE after a few random trials (Bergstra et al. 2011; Optuna's default sampler)
    startup = min(10, max(2, spec.trials // 4))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


def make_pruner(spec: SweepSpec) -> Any:
    import optuna

    if spec.pruner == "median":  # stop a trial worse than the median of earlier ones there
        startup = min(5, max(1, spec.trials // 4))
        return optuna.pruners.MedianPruner(
            n_startup_trials=startup, n_warmup_steps=spec.prune_after
        )
    if spec.pruner == "halving":  # ASHA (Li et al. 2020): rungs at eval_every x 3^k steps
        first = max(spec.eval_every or max(1, spec.steps // 8), spec.prune_after)
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=first, reduction_factor=3)
    return optuna.pruners.NopPruner()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_dead_trials(study: Any, say: Callable[[str], None] = print) -> int:
    """Trials left RUNNING by a process of this host that is gone (a crash, a kill): marked
    failed and queued again with the same parameters. Trials of other hosts are left to the
    heartbeat (failed after 60 s without one)."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    storage, retry, n = study._storage, RetryHeartbeatStaleTrialCallback(max_retry=2), 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid, host = t.user_attrs.get("pid"), t.user_attrs.get("host")
        if host != socket.gethostname() or pid is None or _alive(int(pid)):
            continue
        if storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
            retry(study, storage.get_trial(t._trial_id))
            say(f"sweep: trial {t.number} was left running by a process that is gone (pid {pid})"
                "; marked failed and queued again")  # fmt: skip
            n += 1
    return n


def finished(study: Any) -> list[Any]:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def suggest(trial: Any, p: Param) -> Any:
    if p.kind == "choice":
        return trial.suggest_categorical(p.key, p.choices)
    if p.kind == "int":
        return trial.suggest_int(p.key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
    return trial.suggest_float(p.key, p.low, p.high, step=p.step, log=p.log)


def trial_config(spec: SweepSpec, params: dict[str, Any], threads: int | None) -> Any:
    from llmtrain.train.config import load_run_config

    sets = spec.fixed_overrides() + [f"{k}={json.dumps(v)}" for k, v in params.items()]
    if threads:
        sets.append(f"train.threads={threads}")
    return load_run_config([], None, sets, base=spec.base)


def objective(trial: Any, spec: SweepSpec, out: Path, worker: int, threads: int | None) -> float:
    """Train one trial; its value is the final `spec.metric`. Pruned: `optuna.TrialPruned`."""
    import optuna

    from llmtrain.train.faults import TrainingDivergedError
    from llmtrain.train.hooks import StopRun
    from llmtrain.train.trainer import Trainer

    params = {k: suggest(trial, p) for k, p in spec.params.items()}
    run_dir = out / "trials" / f"{trial.number:04d}"
    for k, v in {"run_dir": str(run_dir.relative_to(out)), "pid": os.getpid(),
                 "host": socket.gethostname(), "worker": worker}.items():  # fmt: skip
        trial.set_user_attr(k, v)
    cfg = trial_config(spec, params, threads)  # ConfigError: an invalid combination → failed

    def on_eval(rec: dict[str, Any]) -> None:
        if spec.metric not in rec:
            have = ", ".join(k for k in rec if k.startswith("val_"))
            raise LLMTrainError(f"{spec.source}: metric {spec.metric!r} is not logged by this "
                                f"objective; use one of {have}")  # fmt: skip
        trial.report(float(rec[spec.metric]), int(rec["step"]))
        if rec["step"] < spec.steps and trial.should_prune():
            raise StopRun(f"pruned at step {rec['step']}")

    run_dir.mkdir(parents=True, exist_ok=True)
    start, pruned = time.perf_counter(), False
    with (
        open(run_dir / "train.log", "a", encoding="utf-8") as log,  # the trial's own console
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        trainer = Trainer(cfg, run_dir, show_progress=False, on_eval=on_eval)
        try:
            result = trainer.fit()
        except StopRun:
            pruned = True
        except TrainingDivergedError as e:  # a bad region: pruned tells the sampler so
            trial.set_user_attr("diverged", str(e).splitlines()[0])
            pruned = True
    trial.set_user_attr("steps", trainer.step)
    trial.set_user_attr("seconds", round(time.perf_counter() - start, 2))
    if trainer.stop.exit_code:  # SIGTERM/SIGUSR1 stopped it early: no result; queue it again
        trial.study.enqueue_trial(params, user_attrs={"retry_of": trial.number})
        raise LLMTrainError(
            f"trial {trial.number} stopped by {trainer.stop.signal_name} at step {trainer.step}"
            "; rerun the same command to resume (the trial is queued again)"
        )
    if pruned:
        raise optuna.TrialPruned(f"pruned at step {trainer.step}")
    return float(result[spec.metric])


def progress_line(study: Any, spec: SweepSpec, trial: Any, workers: int) -> str:
    """`trial 7 pruned at step 75/200: val_bpb 2.41 (3.1 s) | 8/20 done, best 2.05 (#3), ETA 40s`"""
    from llmtrain.monitor.dashboard import hms

    a = trial.user_attrs
    value = trial.value if trial.value is not None else (
        trial.intermediate_values[max(trial.intermediate_values)]
        if trial.intermediate_values else None
    )  # fmt: skip
    state = trial.state.name.lower()
    what = f"trial {trial.number} {state}"
    if state == "pruned":
        what += f" at step {a.get('steps')}/{spec.steps}" + (
            " (diverged)" if "diverged" in a else ""
        )
    shown = f"{value:.4f}" if value is not None else "-"
    done = finished(study)
    line = f"{what}: {spec.metric} {shown} ({a.get('seconds', 0):.1f} s)"
    line += f" | {len(done)}/{spec.trials} done"
    complete = [t for t in done if t.value is not None and t.state.name == "COMPLETE"]
    if complete:
        best = study.best_trial
        line += f", best {best.value:.4f} (#{best.number})"
    left = max(0, spec.trials - len(done))
    if left and done:
        per = sum(t.user_attrs.get("seconds", 0) for t in done) / len(done)
        line += f", ETA {hms(per * left / max(1, workers))}"
    return line


def run_worker(out: Path, worker: int = 0, threads: int | None = None, workers: int = 1) -> int:
    """Run trials until the study holds `spec.trials` finished ones (counting those other
    workers are running); returns the number of trials run here."""
    from optuna.trial import TrialState

    spec = read_spec(out)
    study = open_study(spec, out)
    # a seed of its own for each worker and each resume, or they would draw the same values
    study.sampler = make_sampler(spec, salt=worker * 1_000_003 + len(study.trials))
    prefix, ran = (f"[w{worker}] " if workers > 1 else ""), []

    def report(study: Any, trial: Any) -> None:
        ran.append(trial.number)
        if trial.state == TrialState.FAIL:
            why = trial.user_attrs.get("error") or trial.system_attrs.get("fail_reason", "")
            print(f"{prefix}trial {trial.number} failed: {why}", flush=True)
        else:
            print(prefix + progress_line(study, spec, trial, workers), flush=True)

    # one trial per optimize() call (heartbeat, stale-trial retry and `catch` included), the
    # free slots counted before each: workers sharing the study stop at spec.trials together
    while len(ran) < spec.trials:  # failed trials count here: a broken space cannot loop forever
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if spec.trials - len(finished(study)) - len(running) <= 0:
            break
        study.optimize(
            lambda trial: _guarded(trial, spec, out, worker, threads),
            n_trials=1,
            catch=(ConfigError,),
            callbacks=[report],
        )
    return len(ran)


def _guarded(trial: Any, spec: SweepSpec, out: Path, worker: int, threads: int | None) -> float:
    try:
        return objective(trial, spec, out, worker, threads)
    except ConfigError as e:  # this combination of values is not a valid config
        trial.set_user_attr("error", str(e))
        raise


if __name__ == "__main__":  # a worker process of `llmtrain sweep --parallel N`
    import sys

    from llmtrain.errors import LLMTrainError as _Err

    try:
        w, n = int(sys.argv[2]), int(sys.argv[4])
        run_worker(Path(sys.argv[1]), w, int(sys.argv[3]) or None, n)
    except _Err as e:
        print(f"error: [w{sys.argv[2]}] {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
