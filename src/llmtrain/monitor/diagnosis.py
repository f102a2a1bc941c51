"""Diagnosis: rules over a run's metrics that say what went wrong, show the evidence (steps
and values) and suggest a concrete fix. `diagnose(run)` runs every rule in `RULES`.

Each rule needs enough points to judge and compares robust statistics (medians, rolling
medians and MADs) of early and recent windows, so noisy but healthy runs raise nothing."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from llmtrain.monitor.runs import RunData, finite
from llmtrain.optim.schedule import lr_at, schedule_of

Severity = Literal["error", "warning", "info"]


@dataclass
class Finding:
    rule: str
    severity: Severity
    title: str
    evidence: str
    suggestion: str
    steps: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fmt(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    return f"{v:.3g}" if abs(v) < 1e-2 or abs(v) >= 1e4 else f"{v:.4g}"


def _median(xs: list[float]) -> float:
    return statistics.median(xs)


def _rolling_median(xs: list[float], k: int) -> list[float]:
    """Median of each point's trailing window of up to k values."""
    return [_median(xs[max(0, i - k + 1) : i + 1]) for i in range(len(xs))]


def _train(run: RunData, key: str, after_step: int = 0) -> tuple[list[int], list[float]]:
    pts = [(r["step"], float(r[key])) for r in run.train if finite(r.get(key))]
    pts = [(s, v) for s, v in pts if s > after_step]
    return [s for s, _ in pts], [v for _, v in pts]


def _cfg(run: RunData, section: str, key: str, default: Any = None) -> Any:
    return run.config.get(section, {}).get(key, default)


def rule_nan(run: RunData) -> Finding | None:
    for recs, keys in ((run.train, ("loss", "grad_norm")), (run.evals, ("val_loss",))):
        for i, r in enumerate(recs):
            bad = [k for k in keys if k in r and not finite(r[k])]
            if bad:
                prev = next((p for p in reversed(recs[:i]) if finite(p.get(bad[0]))), None)
                before = (
                    f"; last finite {bad[0]} {fmt(prev[bad[0]])} at step {prev['step']}"
                    if prev
                    else ""
                )
                gn = [
                    f"{fmt(p['grad_norm'])}@{p['step']}"
                    for p in recs[max(0, i - 3) : i]
                    if finite(p.get("grad_norm"))
                ]
                prec = _cfg(run, "train", "precision", "auto")
                return Finding(
                    "nan",
                    "error",
                    f"{bad[0]} became {r[bad[0]]} (NaN/Inf)",
                    f"{bad[0]} = {r[bad[0]]} at step {r['step']}{before}"
                    + (f"; grad norms just before: {', '.join(gn)}" if gn else ""),
                    f"lower train.lr (now {_cfg(run, 'train', 'lr')}), keep train.grad_clip > 0, "
                    "lengthen train.warmup_steps"
                    + (
                        "; fp16 overflows easily: use train.precision=bf16 or fp32"
                        if prec == "fp16"
                        else "; if it persists, try train.precision=fp32 to rule out low precision"
                    )
                    + "; resume from the last checkpoint before that step",
                    [r["step"]],
                )
    return None


def rule_loss_not_falling(run: RunData) -> Finding | None:
    warmup = int(_cfg(run, "train", "warmup_steps", 0) or 0)
    steps, loss = _train(run, "loss")
    if len(loss) < 10 or steps[-1] < warmup + 20:
        return None
    n = len(loss)
    first, last = _median(loss[: max(3, n // 10)]), _median(loss[-max(3, n // 5) :])
    tail = loss[-max(3, n // 5) :]
    noise = 1.4826 * _median([abs(x - last) for x in tail])  # robust std of recent losses
    if first - last > max(0.05 * abs(first), noise):
        return None
    lr = float(_cfg(run, "train", "lr", 0) or 0)
    vocab = int(_cfg(run, "model", "vocab_size", 0) or 0)
    spread = statistics.pstdev(tail) / max(abs(_median(tail)), 1e-12)
    evidence = (
        f"loss {fmt(first)} over steps {steps[0]}-{steps[max(3, n // 10) - 1]} and "
        f"{fmt(last)} over the last {len(tail)} logged steps (up to {steps[-1]}); "
        f"peak lr {fmt(lr)}"
    )
    if vocab > 1:
        evidence += f"; a uniform guess over {vocab} tokens scores ln(V) = {fmt(math.log(vocab))}"
    if lr and lr <= 1e-5:
        why = (
            f"the learning rate is very low: try train.lr={fmt(lr * 30)} "
            "(3e-4 to 1e-3 suits small GPT-style models)"
        )
    elif spread > 0.05:
        why = (
            f"the loss jumps around ({fmt(100 * spread)}% spread) without falling: the "
            f"learning rate is likely too high; try train.lr={fmt(lr / 10)} and "
            "train.grad_clip=1.0"
        )
    elif vocab > 1 and abs(last - math.log(vocab)) < 0.05 * math.log(vocab):
        why = (
            "the model predicts a uniform distribution: check the data (llmtrain prepare's "
            "report.json: empty or shuffled documents, a tokenizer that maps text to <unk>)"
        )
    else:
        why = (
            f"try a higher learning rate (train.lr={fmt(lr * 3)}) if warm-up is long; else "
            "check the data (repeated or random text) and the tokenizer"
        )
    return Finding(
        "loss_not_falling",
        "error",
        "training loss is not falling",
        evidence,
        why,
        [steps[0], steps[-1]],
    )


def rule_divergence(run: RunData) -> Finding | None:
    steps, loss = _train(run, "loss")
    if len(loss) < 10:
        return None
    smooth = _rolling_median(loss, 5)
    i_min = min(range(len(smooth)), key=smooth.__getitem__)
    start, low, end = smooth[0], smooth[i_min], smooth[-1]
    fell = start - low
    risen = [s - low for s in smooth[-3:]]
    if fell <= 0 or min(risen) <= max(0.5 * fell, 0.1 * abs(low)):
        return None
    return Finding(
        "divergence",
        "error",
        "training diverged: the loss went back up and stays up",
        f"smoothed loss fell from {fmt(start)} to {fmt(low)} at step {steps[i_min]}, then rose "
        f"to {fmt(end)} by step {steps[-1]}",
        f"resume from a checkpoint before step {steps[i_min]} with a lower train.lr (now "
        f"{_cfg(run, 'train', 'lr')}), a longer train.warmup_steps and train.grad_clip=1.0",
        [steps[i_min], steps[-1]],
    )


def rule_spikes(run: RunData) -> Finding | None:
    warmup = int(_cfg(run, "train", "warmup_steps", 0) or 0)
    steps, loss = _train(run, "loss", after_step=warmup)
    spikes = []
    for i in range(10, len(loss)):
        window = loss[i - 10 : i]
        med = _median(window)
        mad = 1.4826 * _median([abs(x - med) for x in window])
        if loss[i] > med + max(6 * mad, 0.15 * abs(med)):
            spikes.append((steps[i], loss[i], med))
    if not spikes:
        return None
    shown = "; ".join(f"step {s}: {fmt(v)} (recent median {fmt(m)})" for s, v, m in spikes[:5])
    return Finding(
        "loss_spikes",
        "warning",
        f"{len(spikes)} loss spike(s)",
        shown + (f"; and {len(spikes) - 5} more" if len(spikes) > 5 else ""),
        "spikes that recover are often bad batches (look at the data around those steps); "
        "frequent ones mean the LR is near its stability limit: lower train.lr, keep "
        "train.grad_clip=1.0, use optim.beta2=0.95 rather than 0.999, or add warm-up",
        [s for s, _, _ in spikes],
    )


def rule_overfitting(run: RunData) -> Finding | None:
    evals = [r for r in run.evals if finite(r.get("val_loss"))]
    if len(evals) < 3:
        return None
    vals = [r["val_loss"] for r in evals]
    i_min = min(range(len(vals)), key=vals.__getitem__)
    best, now = evals[i_min], evals[-1]
    rising = i_min < len(evals) - 1 and all(v > best["val_loss"] for v in vals[i_min + 1 :])
    if not rising or now["val_loss"] < best["val_loss"] * 1.02 + 0.01:
        return None
    gap_best, gap_now = _gap(run, best), _gap(run, now)
    if gap_best is not None and gap_now is not None and gap_now <= gap_best:
        return None  # val rose with train: that is divergence, not overfitting
    evidence = (
        f"val loss bottomed at {fmt(best['val_loss'])} at step {best['step']} and is "
        f"{fmt(now['val_loss'])} at step {now['step']}"
    )
    if gap_best is not None and gap_now is not None:
        evidence += f"; val - train gap grew from {fmt(gap_best)} to {fmt(gap_now)}"
    train_tokens = ((run.manifest or {}).get("splits", {}).get("train", {}) or {}).get("tokens")
    if train_tokens and now.get("tokens"):
        evidence += (
            f"; the model has seen the training split {fmt(now['tokens'] / train_tokens)} times"
        )
    ckpt = [c.step for c in run.checkpoints if c.step <= best["step"]]
    return Finding(
        "overfitting",
        "warning",
        "overfitting: validation loss rising while train loss falls",
        evidence,
        "add data (or stop sooner), regularise (model.dropout=0.1, optim.weight_decay=0.1+), "
        "or use a smaller model"
        + (f"; the best weights so far are in checkpoint step_{ckpt[-1]:06d}" if ckpt else ""),
        [best["step"], now["step"]],
    )


def _gap(run: RunData, ev: dict[str, Any]) -> float | None:
    near = [
        r["loss"]
        for r in run.train
        if finite(r.get("loss"))
        and abs(r["step"] - ev["step"]) <= max(5, int(_cfg(run, "train", "log_every", 1) or 1) * 3)
    ]
    return ev["val_loss"] - _median(near) if near else None


def rule_grad_norm(run: RunData) -> Finding | None:
    warmup = int(_cfg(run, "train", "warmup_steps", 0) or 0)
    steps, gn = _train(run, "grad_norm", after_step=warmup)
    if len(gn) < 10:
        return None
    n = len(gn)
    base, recent = _median(gn[: max(3, n // 3)]), _median(gn[-max(3, n // 5) :])
    clip = float(_cfg(run, "train", "grad_clip", 0) or 0)
    span = f"steps {steps[0]}-{steps[max(3, n // 3) - 1]}"
    if recent > 10 * base:
        return Finding(
            "grad_norm_exploding",
            "error",
            "gradient norm is exploding",
            f"median grad norm {fmt(base)} over {span}, {fmt(recent)} over the last "
            f"{max(3, n // 5)} logged steps (to step {steps[-1]})",
            "lower train.lr, set train.grad_clip=1.0"
            + (" (it is off)" if clip == 0 else "")
            + ", lengthen warm-up; with fp16 switch to bf16",
            [steps[-1]],
        )
    if recent < base / 1000 or recent < 1e-7:
        return Finding(
            "grad_norm_vanishing",
            "warning",
            "gradient norm is vanishing",
            f"median grad norm {fmt(base)} over {span}, {fmt(recent)} at the end (step {steps[-1]})",
            "the model has stopped learning: check the LR schedule (min_lr), dead activations "
            "or a loss that saturated (labels leaking into inputs make the loss ~0)",
            [steps[-1]],
        )
    if clip > 0 and sum(g > clip for g in gn) > 0.8 * n:
        return Finding(
            "grad_clipped_always",
            "info",
            "the gradient is clipped on almost every step",
            f"grad norm above train.grad_clip={fmt(clip)} on {sum(g > clip for g in gn)} of {n} "
            f"logged steps after warm-up (median {fmt(_median(gn))})",
            "clipping every step lowers the effective LR; fine early on, but if it lasts, lower "
            "train.lr or raise train.grad_clip",
            [],
        )
    return None


def rule_lr_schedule(run: RunData) -> Finding | None:
    t = run.config.get("train", {})
    try:
        kw = schedule_of(t)  # the trainer's own reading of the config
    except (KeyError, TypeError):
        return None  # a partial config: nothing to compare against
    if kw["schedule"] == "plateau" or (kw["schedule"] == "wsd" and t.get("max_time_sec")):
        return None  # adaptive: the LR follows val loss / measured step time, not the step
    bad = []
    for r in run.train:
        if finite(r.get("lr")):
            want = lr_at(int(r["step"]) - 1, **kw)  # a record's lr is the one its step used
            if abs(r["lr"] - want) > 1e-6 * max(abs(want), 1e-12) + 1e-12:
                bad.append((r["step"], r["lr"], want))
    if not bad:
        return None
    s, got, want = bad[0]
    return Finding(
        "lr_schedule",
        "error",
        "the learning rate does not follow the configured schedule",
        f"{len(bad)} logged step(s) differ; first at step {s}: lr {fmt(got)}, the config "
        f"({kw['schedule']}, peak {fmt(kw['lr'])}, warm-up {kw['warmup_steps']}, decay to "
        f"{fmt(kw['min_lr'])} at {kw['decay_steps']}) gives {fmt(want)}",
        "a resumed run with changed train.lr/warmup/max_steps, or code that sets the LR "
        "elsewhere; make config.json match the intended schedule",
        [b[0] for b in bad[:20]],
    )


def rule_throughput(run: RunData) -> Finding | None:
    pts = [(r["step"], r["tokens_per_sec"]) for r in run.train if finite(r.get("tokens_per_sec"))]
    pts = pts[2:]  # the first steps include warm-up / compilation
    if len(pts) < 15:
        return None
    n = len(pts)
    early, late = pts[: n // 3], pts[-max(3, n // 5) :]
    base, recent = _median([v for _, v in early]), _median([v for _, v in late])
    if recent >= 0.6 * base:
        return None
    return Finding(
        "throughput_drop",
        "warning",
        f"throughput fell {fmt(100 * (1 - recent / base))}%",
        f"{fmt(base)} tokens/s over steps {early[0][0]}-{early[-1][0]}, {fmt(recent)} over "
        f"steps {late[0][0]}-{late[-1][0]}",
        "look for other processes on the machine, GPU thermal throttling (gpu_temp_c, "
        "gpu_power_w), a slower storage path, or memory fragmentation after an eval",
        [late[0][0]],
    )


def rule_data_wait(run: RunData) -> Finding | None:
    pts = [(r["step"], r["data_wait_frac"]) for r in run.train if finite(r.get("data_wait_frac"))]
    pts = pts[2:]
    if len(pts) < 5:
        return None
    frac = _median([v for _, v in pts])
    if frac < 0.2:
        return None
    ms = _median([r["data_wait_ms"] for r in run.train[2:] if finite(r.get("data_wait_ms"))])
    return Finding(
        "data_wait",
        "warning",
        "the input pipeline is the bottleneck",
        f"{fmt(100 * frac)}% of each step (median {fmt(ms)} ms) is spent waiting for batches, "
        f"over {len(pts)} logged steps ({pts[0][0]}-{pts[-1][0]})",
        "put the prepared data on local fast storage, raise the micro-batch size, or check that "
        "the shards are not on a network filesystem",
        [pts[0][0], pts[-1][0]],
    )


def rule_memory(run: RunData) -> Finding | None:
    worst = (0.0, 0, "")
    for r in run.train:
        for used, total in (
            ("max_memory_reserved_gb", "memory_limit_gb"),
            ("gpu_mem_used_gb", "gpu_mem_total_gb"),
        ):
            if finite(r.get(used)) and finite(r.get(total)) and r[total] > 0:
                worst = max(
                    worst,
                    (
                        r[used] / r[total],
                        r["step"],
                        f"{fmt(r[used])} of {fmt(r[total])} GiB ({used})",
                    ),
                )
    if worst[0] < 0.92:
        return None
    micro = _cfg(run, "train", "micro_batch_size") or _cfg(run, "train", "batch_size")
    return Finding(
        "memory_near_limit",
        "warning",
        f"GPU memory {fmt(100 * worst[0])}% full",
        f"{worst[2]} at step {worst[1]}",
        f"lower train.micro_batch_size (now {micro}; the global batch stays the same through "
        "accumulation), use bf16, or a shorter model.block_size",
        [worst[1]],
    )


def rule_moe(run: RunData) -> Finding | None:
    recent = [r["moe_load"] for r in run.train[-5:] if r.get("moe_load")]
    if not recent:
        return None
    dead, hot = [], []
    for layer in range(len(recent[-1])):
        loads = [rec[layer] for rec in recent if layer < len(rec)]
        n_exp = len(loads[-1])
        mean = [sum(x[e] for x in loads) / len(loads) for e in range(n_exp)]
        dead += [
            f"layer {layer} expert {e} ({fmt(100 * m)}%)"
            for e, m in enumerate(mean)
            if m < 0.1 / n_exp
        ]
        hot += [
            f"layer {layer} expert {e} ({fmt(100 * m)}%)"
            for e, m in enumerate(mean)
            if m > 2.5 / n_exp
        ]
    if not dead and not hot:
        return None
    parts = ([f"dead (< 10% of a fair share): {', '.join(dead[:6])}"] if dead else []) + (
        [f"overloaded (> 2.5x a fair share): {', '.join(hot[:6])}"] if hot else []
    )
    return Finding(
        "moe_imbalance",
        "warning",
        "mixture-of-experts routing is unbalanced",
        "; ".join(parts) + f" (mean token share over the last {len(recent)} logged steps, to "
        f"step {run.train[-1]['step']})",
        "raise the load-balancing loss coefficient, add router z-loss, or raise the capacity "
        "factor; re-initialise dead experts if they never recover",
        [run.train[-1]["step"]],
    )


def rule_skipped_steps(run: RunData) -> Finding | None:
    last = next((r for r in reversed(run.train) if finite(r.get("skipped_steps"))), None)
    if last is None or last["skipped_steps"] <= max(5, 0.02 * last["step"]):
        return None
    return Finding(
        "skipped_steps",
        "warning",
        f"{int(last['skipped_steps'])} optimizer steps skipped",
        f"{int(last['skipped_steps'])} of {last['step']} steps had inf/NaN gradients and were "
        "skipped by the fp16 loss scaler",
        "use train.precision=bf16 (no loss scaling) or lower train.lr",
        [last["step"]],
    )


def rule_rollbacks(run: RunData) -> Finding | None:
    """Spike rollbacks the trainer made (events written by train/rollback.py)."""
    rolls = [e for e in run.events if e.get("event") == "rollback"]
    if not rolls:
        return None
    shown = "; ".join(
        f"at step {e['step']} back to step {e.get('to_step')} (skipped {e.get('skipped_samples')}"
        f" samples, {e.get('documents')} documents)"
        for e in rolls[:5]
    )
    return Finding(
        "rollbacks",
        "warning",
        f"{len(rolls)} rollback(s) after persistent loss / grad-norm spikes",
        shown,
        "look at the documents listed in RUN_DIR/bad_windows.jsonl (spike_documents first): "
        "filter them out of the corpus if they are junk; if they look normal the LR is near "
        "its stability limit: lower train.lr, keep train.grad_clip=1.0, use optim.beta2=0.95",
        [e["step"] for e in rolls],
    )


RULES: list[Callable[[RunData], Finding | None]] = [
    rule_nan,
    rule_loss_not_falling,
    rule_divergence,
    rule_spikes,
    rule_overfitting,
    rule_grad_norm,
    rule_lr_schedule,
    rule_throughput,
    rule_data_wait,
    rule_memory,
    rule_moe,
    rule_skipped_steps,
    rule_rollbacks,
]
_ORDER = {"error": 0, "warning": 1, "info": 2}


def diagnose(run: RunData) -> list[Finding]:
    """Every rule's finding for this run, errors first."""
    found = [f for rule in RULES if (f := rule(run)) is not None]
    return sorted(found, key=lambda f: _ORDER[f.severity])
