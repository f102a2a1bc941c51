"""`Trainer`: sets up a run (data, model, optimizer, resume) and runs the loop.

`fit()` is the whole loop on one screen; the numerics of one optimizer step live in
`train_step()`; eval, checkpoint and logging stay visible in `fit()`.
"""

from __future__ import annotations

import math
import shutil
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from llmtrain.checkpoint import (
    LOOP_KEYS,
    RunDirLock,
    last_verified_checkpoint,
    latest_checkpoint,
    select_checkpoint,
)
from llmtrain.config import config_to_dict
from llmtrain.data.loader import TokenWindows, TrainBatches
from llmtrain.data.shards import open_split, read_manifest
from llmtrain.distributed import all_sum, barrier, grad_sync, init_distributed, parallelize
from llmtrain.distributed.engine import build_engine
from llmtrain.distributed.parallelize import captures_cuda_graphs, inductor_mode
from llmtrain.errors import ConfigError
from llmtrain.eval import evaluate
from llmtrain.eval.in_loop import TaskEvaluator
from llmtrain.models import build_model
from llmtrain.models.flops import flops_per_token, head_flops_per_token
from llmtrain.models.hf_interop import init_from_hf
from llmtrain.monitor.console import TrainConsole
from llmtrain.monitor.probes import peak_flops
from llmtrain.monitor.run_monitor import RunMonitor
from llmtrain.objectives import build_objective, freeze_unused_heads, resolve_fused_loss
from llmtrain.objectives.base import Batch
from llmtrain.optim import build_optimizer
from llmtrain.tokenizer import load_tokenizer
from llmtrain.train.auto_micro import choose_micro_batch
from llmtrain.train.config import RunConfig
from llmtrain.train.curriculum import BatchRamp, DataSkips, Sampler, split_rows
from llmtrain.train.faults import StepGuard
from llmtrain.train.hooks import EvalHook
from llmtrain.train.lr_control import LRController
from llmtrain.train.precision import flush_cpu_subnormals, resolve_precision
from llmtrain.train.rollback import (
    DocumentIndex,
    append_record,
    bad_window_record,
    checkpoint_step,
    drop_checkpoints_after,
    last_good_checkpoint,
)
from llmtrain.train.samples import TextSampler
from llmtrain.train.signals import StopRequest
from llmtrain.train.step_stats import DeferredStats, supports_device_skip
from llmtrain.utils.io import atomic_write_json


class Trainer:
    """One training run. `cfg` is never modified: the values derived at setup (the vocabulary
    from the data, the micro-batch for this world size / memory) live in the resolved copy
    `self.cfg`, which is what config.json and every checkpoint record. The run directory is
    locked only while the trainer works in it (`fit()`, or `with Trainer(...) as tr:`)."""

    def __init__(
        self,
        cfg: RunConfig,
        run_dir: str | Path,
        resume: bool = False,
        show_progress: bool = True,
        *,
        resume_from: int | str | Path | None = None,
        verify: bool = True,
        task: Any = None,
        on_eval: EvalHook | None = None,
    ):
        """`task` (a `finetune.task.FinetuneTask`) replaces the prepared data directory: it
        gives the data source, objective, model, val set, best score and early stop."""
        self.user_cfg, self.run_dir, self.show_progress = cfg, Path(run_dir), show_progress
        self.task = task
        self.on_eval = on_eval  # after each eval; may raise StopRun (train/hooks.py)
        self.ckpt_root = self.run_dir / "checkpoints"
        self.verify, self._lock = verify, None
        resume = resume or resume_from is not None
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.train.seed)
        self.prec = resolve_precision(cfg.train.precision, cfg.train.device, cfg.train.compile)
        self.cuda_graphs = captures_cuda_graphs(  # compile_mode=reduce-overhead on CUDA
            cfg.train.compile_mode, self.prec.device, self.prec.compile
        )
        flush_cpu_subnormals(self.prec.device)  # sharp attention makes them: 40 % slower
        self.dist = init_distributed(cfg.distributed, self.prec.device.type)  # torchrun env
        if task is None:
            self._setup_data(cfg)
        else:  # fine-tuning: the task's data source, objective and val set
            self.manifest, self.objective, self.task_eval = None, task.objective, None
            micro = cfg.train.micro_for(self.dist.dp_size)
            self.cfg = cfg = replace(cfg, train=replace(cfg.train, micro_batch_size=micro))
            self.source = task.batches(cfg.train.seed)  # samples by index, like TrainBatches
            self.val_source, self.val_items, self.val_split = task.val, None, None
        seq = cfg.model.block_size
        fresh = not (resume and latest_checkpoint(self.ckpt_root))
        self._build_model(fresh)
        resolve_fused_loss(  # the LM head fused with the loss: off compiled on GPUs, TP, ZeRO-3
            self.objective,
            cfg.objective.fused_loss,
            compiled=self.prec.compile,
            device=self.prec.device.type,
            blocked_by=cfg.distributed.head_outside_module_calls(),
            head_vocab=self.cfg.model.vocab_size,  # resolved from the data by now
        )
        if cfg.train.auto_micro_batch and fresh and task is None:
            tok = self.manifest["tokenizer"]
            args = (self.model, self.step_fn, self.objective, self.prec, self.dist.dp_size)
            with self._eager_if_graphed():  # trials capture no graph at each size they try
                micro = choose_micro_batch(cfg, *args, int(tok["vocab_size"]))
            self.cfg = cfg = replace(cfg, train=replace(cfg.train, micro_batch_size=micro))
        t = cfg.train
        # the sample range of each micro-batch: batch-size / seq-len warm-up, rollback skips;
        # over the data-parallel ranks (tensor-parallel ranks of a group read the same data)
        self.sampler = Sampler(BatchRamp.from_config(t, self.dist.dp_size, seq))
        self.accum = self.sampler.ramp.full_accum
        self.optimizer = build_optimizer(self.model, cfg.optim, t.lr)  # after FSDP sharding
        # backward/step/checkpoints: autograd + this optimizer, or DeepSpeed's engine (CUDA
        # graphs: gradients in fixed buffers, as a replay overwrites what its capture wrote)
        self.engine = build_engine(
            cfg, self.dist, self.model, self.step_fn, self.optimizer, keep_grads=self.cuda_graphs
        )
        self.step_fn = self.engine.forward
        self.scaler = torch.amp.GradScaler("cuda") if self.prec.use_grad_scaler else None
        self.guard = StepGuard(cfg.stability, f" (now {t.lr})")  # NaN/Inf, loss/grad spikes
        self.deferred = self._deferred_stats()  # sync-free steps (CUDA + fused AdamW)
        # the loss compiled beside the compiled blocks: fused log-softmax kernels read the
        # bf16 logits directly instead of an fp32 copy (any objective's loss, not CLM only);
        # never as a CUDA graph: that would copy the eager head's logits into its static
        # input at every replay, to save one or two kernel launches
        mode = inductor_mode(t.compile_mode, cuda_graphs=False)
        self.loss_fn = torch.compile(self.objective.loss, mode=mode) if self.prec.compile else None
        self.stop = StopRequest(t.max_time_sec, self.prec.device)  # SIGTERM/SIGINT/deadline
        self.lr_ctl = LRController(t, self.prec.device)  # + deadline WSD plan, plateau
        self.step, self.tokens, self.elapsed = 0, 0, 0.0
        # of the resolved model (its vocabulary from the data): the head's FLOPs included
        self.flops_per_token = flops_per_token(self.cfg.model, seq)
        self.head_flops = head_flops_per_token(self.cfg.model)  # of those, the LM head's
        self.samples = TextSampler.for_run(
            t.sample_every, cfg.model, cfg.distributed.strategy, self.run_dir
        )
        with self:  # the run directory is ours while we check and write it
            self._prepare_run_dir(resume, resume_from)

    def _setup_data(self, cfg: RunConfig) -> None:
        """Objective, resolved config and data of a pre-training run (a prepared DATA_DIR)."""
        self.manifest = read_manifest(cfg.data.path)
        tok = self.manifest["tokenizer"]
        self.objective = build_objective(  # batches + loss; may append ids (MASK, sentinels)
            cfg.train.objective,
            cfg.objective,
            int(tok["vocab_size"]),
            cfg.model.block_size,
            cfg.train.seed,
            Path(cfg.data.path) / tok.get("path", "tokenizer"),
        )
        self.cfg = cfg = self._resolve(cfg)  # vocab from the data, micro-batch per world size
        self.task_eval = (  # eval.tasks: benchmark tasks at every eval (read + tokenised once)
            TaskEvaluator(
                cfg.eval, load_tokenizer(Path(cfg.data.path) / tok.get("path", "tokenizer"))
            )
            if cfg.eval.tasks
            else None
        )
        seq = cfg.model.block_size
        self.train_windows = TokenWindows(open_split(cfg.data.path, "train"), seq, "train")
        self.val_windows = TokenWindows(open_split(cfg.data.path, "val"), seq, "val")
        self.source = TrainBatches(self.train_windows, cfg.train.seed)  # samples by index
        self.val_source, self.val_split = self.val_windows, self.manifest["splits"]["val"]
        self.val_items = max(1, cfg.train.eval_tokens // seq)  # evenly spaced windows

    def _build_model(self, fresh: bool) -> None:
        cfg = self.cfg
        if self.task is not None:  # base weights (not on resume) + head + LoRA
            self.model = self.task.build_model(self.prec.device, load_base_weights=fresh)
        else:
            self.model = build_model(cfg.model, device=self.prec.device)
        if cfg.model.init_from and fresh and self.task is None:
            init_from_hf(self.model, cfg.model.init_from)  # --init-from; never on resume
        freeze_unused_heads(self.model, self.objective)  # DDP must see a grad for every param
        self.step_fn = parallelize(  # checkpointing → compile → DDP | FSDP2 (distributed/)
            self.model,
            cfg.distributed,
            self.dist,
            device=self.prec.device,
            compile=self.prec.compile,
            compile_scope=cfg.train.compile_scope,
            compile_mode=cfg.train.compile_mode,
            activation_checkpointing=cfg.distributed.activation_checkpointing,
        )

    def _deferred_stats(self) -> DeferredStats | None:
        """Whether the loss and grad norm may stay on the device (`train/step_stats.py`)."""
        mode = self.cfg.train.sync_free
        possible = self.scaler is None and supports_device_skip(self.optimizer)
        possible = possible and self.engine.steps_torch_optimizer  # not under DeepSpeed
        if mode == "on" and not possible:
            raise ConfigError(
                "train.sync_free=on needs optim.implementation=fused AdamW/Adam and no fp16 "
                "loss scaling; set train.sync_free=auto"
            )
        wanted = mode == "on" or (mode == "auto" and self.prec.device.type == "cuda")
        return DeferredStats(self.guard, self.prec.device) if wanted and possible else None

    def _resolve(self, cfg: RunConfig) -> RunConfig:
        """A copy of `cfg` with the derived values filled in (the user's is left as given)."""
        vocab = int(self.manifest["tokenizer"]["vocab_size"]) + self.objective.extra_vocab
        m = cfg.model
        if 0 < m.vocab_size < vocab:
            raise ConfigError(
                f"model.vocab_size ({m.vocab_size}) is smaller than the data's tokenizer "
                f"vocabulary ({vocab}); set model.vocab_size=0 to take it from the data"
            )
        micro = cfg.train.micro_for(self.dist.dp_size)  # unset: batch / data-parallel ranks
        return replace(
            cfg,
            model=replace(m, vocab_size=m.vocab_size or vocab),
            train=replace(cfg.train, micro_batch_size=micro),
        )

    def recorded_config(self) -> dict[str, Any]:
        """What config.json and checkpoints record: the resolved config, except that a
        micro-batch left unset stays unset (it depends on the world size, so a resume on
        another number of processes derives it again); one chosen by --auto-micro-batch is
        recorded, as a resume does not measure again."""
        out = config_to_dict(self.cfg)
        if self.user_cfg.train.micro_batch_size is None and not self.cfg.train.auto_micro_batch:
            out["train"]["micro_batch_size"] = None
        return out

    def __enter__(self) -> Trainer:
        if self.dist.is_rank0 and self._lock is None:
            self._lock = RunDirLock(self.run_dir).acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _prepare_run_dir(self, resume: bool, resume_from: int | str | Path | None) -> None:
        latest = latest_checkpoint(self.ckpt_root)
        if latest is not None and not resume:
            raise ConfigError(
                f"run directory {self.run_dir} already holds checkpoints (latest {latest.name}); "
                "pass --resume to continue it, or choose a new --out"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ckpt = select_checkpoint(self.ckpt_root, resume_from, self.verify) if resume else None
        # --no-verify: the last checkpoint that verifies is never pruned by this run
        unverified = ckpt is not None and not self.verify
        self.protected = last_verified_checkpoint(self.ckpt_root, ckpt) if unverified else None
        if ckpt is not None:
            state = self.engine.load(ckpt, verify=self.verify, require=LOOP_KEYS)
            self._restore(state)
            self.elapsed = state["elapsed_sec"]
            self.sampler.skips = DataSkips(state.get("data_skips", []))
            if self.task is not None:
                self.task.load_state_dict(state.get("task", {}))  # best score, patience
            if self.dist.is_rank0:
                print(f"resuming from step {self.step} (checkpoint {ckpt})", flush=True)
        if self.task is not None:
            if self.dist.is_rank0:
                self.task.write_run_files(self.run_dir)  # tokenizer, labels / chat format
        else:
            tok = self.manifest["tokenizer"]
            tok_src = Path(self.cfg.data.path) / tok.get("path", "tokenizer")
            if tok_src.is_dir():
                shutil.copytree(tok_src, self.run_dir / "tokenizer", dirs_exist_ok=True)
        atomic_write_json(self.run_dir / "config.json", self.recorded_config())
        resumed = self.step if ckpt is not None else None
        self.logger = RunMonitor(  # metrics.jsonl + trackers + in-loop probes (monitor/)
            self.cfg.monitor, self.run_dir, self.recorded_config(), resumed, self.prec.device
        )
        self.logger.watch(self.model, self.optimizer)
        if self.prec.device.type == "cpu":  # MFU against a measured matmul peak
            dtype = self.prec.autocast_dtype or torch.float32
            self.logger.peak_flops = peak_flops(
                self.prec.device, self.cfg.monitor.peak_tflops, dtype
            )

    def _restore(self, state: dict[str, Any]) -> None:
        """Loop state of a loaded checkpoint (model, optimizer and RNG are loaded already)."""
        self.step, self.tokens = state["step"], state["tokens"]
        self.guard.load_state_dict(state.get("guard", {}))
        self.lr_ctl.load_state_dict(state.get("lr", {}))

    def _sample(self, micro: int) -> Any:
        """Micro-batch `micro` of this step for this rank, read from the sample source (the
        time it takes counts as data wait)."""
        t0 = time.perf_counter()
        rows = self.sampler.sample_range(self.step, micro, self.dist.dp_rank)
        sample = self.source.samples(rows.start, len(rows))
        if self.sampler.ramp.seq_warmup:  # sequence-length warm-up: shorter rows
            sample = split_rows(sample, self.sampler.ramp.seq_len_at(self.step))
        self.logger.clock.data_sec += time.perf_counter() - t0
        return sample

    def train_step(self) -> dict[str, float]:
        """One optimizer step over `accum` micro-batches; loss normalised by the step's tokens."""
        dev = self.prec.device
        dp, rank = self.dist.dp_size, self.dist.dp_rank
        micro = [
            # a sample of the source (token windows (x, y)); random masks are seeded by the
            # sample's place in the global batch, so they do not depend on the world size
            self.objective.make_batch(self._sample(m), step=self.step, micro=m * dp + rank)
            for m in range(self.sampler.ramp.accum(self.step))  # self.accum after any warm-up
        ]
        n_tokens = sum(b.n_tokens for b in micro)
        flops = sum(self._flops(b) for b in micro)
        # the step's loss normaliser: targets over all ranks, / world since DDP/FSDP average
        n_targets = all_sum(sum(b.n_targets for b in micro)) / self.dist.world_size
        loss_total, totals = torch.zeros((), device=dev), {}  # totals: objective metrics
        for m, batch in enumerate(micro):
            batch = batch.to(dev)
            with grad_sync(self.step_fn, enabled=m == len(micro) - 1):  # sync on the last
                with self.prec.autocast():
                    out = self.objective.forward(self.step_fn, batch)  # logits etc.
                loss_sum, metrics = (self.loss_fn or self.objective.loss)(out, batch)
                totals = {k: totals.get(k, 0) + v for k, v in metrics.items()}
                loss = loss_sum / n_targets
                self.engine.backward(self.scaler.scale(loss) if self.scaler else loss)
            loss_total += loss.detach()
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        clip = self.cfg.train.grad_clip if self.cfg.train.grad_clip > 0 else float("inf")
        grad_norm = self.engine.clip_grad_norm(clip)  # a tensor; DeepSpeed: 0, it clips in step
        loss_total = all_sum(loss_total)
        if self.deferred is not None:  # no host read: decide on the device, read a step late
            return self._deferred_update(loss_total, grad_norm, n_tokens, flops, totals)
        grad_norm, loss_value = float(grad_norm), float(loss_total) / self.dist.world_size
        # NaN/Inf or spike: no update (fp16 overflow is the scaler's to handle, not a fault)
        skip = self.guard.check(loss_value, 0.0 if self.scaler else grad_norm, self.step)
        if skip is not None:
            self.logger.event(
                "skipped_step", self.step + 1, reason=skip, loss=loss_value, grad_norm=grad_norm
            )
        if self.scaler:
            if skip is None:
                self.scaler.step(self.optimizer)
            self.scaler.update()
        elif skip is None:
            self.engine.step()
        self.engine.zero_grad()
        grad_norm = self.engine.reported_grad_norm(grad_norm)
        return {"loss": loss_value, "grad_norm": grad_norm, "tokens": n_tokens, "flops": flops,
                "totals": totals}  # fmt: skip

    def _flops(self, batch: Batch) -> float:
        """Training FLOPs of one micro-batch (`models/flops.py`): the body's per token read,
        the LM head's per position it ran at (every target position, fewer under an
        objective's sparse prediction, none for a classifier)."""
        body = self.flops_per_token - self.head_flops
        return batch.n_tokens * body + batch.n_predicted * self.head_flops

    def _deferred_update(
        self,
        loss_sum: torch.Tensor,
        grad_norm: torch.Tensor,
        n_tokens: int,
        flops: float,
        totals: dict,
    ) -> dict[str, Any] | None:
        """The optimizer update of a sync-free step: the guard's verdict on THIS step is taken
        on the device (`found_inf`); the PREVIOUS step's values are read now that this one is
        queued. None when that late read calls for a rollback: nothing of this step applies."""
        loss = loss_sum.double() / self.dist.world_size  # what the host path reads, as float64
        grad_norm = grad_norm.double()
        self._settle()
        if self.guard.rollback_due:
            self.engine.zero_grad()
            self.logger.clock.abandon()  # this step runs again after the rollback
            return None
        self.optimizer.found_inf = self.deferred.decide(loss, grad_norm)
        self.optimizer.step()  # fused AdamW: a flagged step changes nothing, its count included
        self.engine.zero_grad()
        self.deferred.push(self.step, loss, grad_norm)
        return {"loss": loss, "grad_norm": grad_norm, "tokens": n_tokens, "flops": flops,
                "totals": totals}  # fmt: skip

    def _settle(self, out: dict[str, Any] | None = None) -> None:
        """Read the pending sync-free step (if any) and replay the guard on it; with `out`, put
        the host values of that step into it (log steps)."""
        if self.deferred is None:
            return
        step = self.deferred.pending.step if self.deferred.pending else None
        skip = self.deferred.settle()
        if skip:  # a reason string: the device skipped it, though the optimizer hook ran
            last = self.deferred.last
            self.logger.clock.count_skipped()
            self.logger.event("skipped_step", step + 1, reason=skip, loss=last["loss"],
                              grad_norm=last["grad_norm"])  # fmt: skip
        if out is not None and self.deferred.last:
            out["loss"], out["grad_norm"] = (
                self.deferred.last["loss"],
                self.deferred.last["grad_norm"],
            )
            if self.prec.device.type == "cuda":  # drained here, so a log window's tokens/s
                torch.cuda.synchronize(self.prec.device)  # is finished work, not queued work

    def fit(self) -> dict[str, Any]:
        """Train to `train.max_steps` (or a stop request); holds the run directory's lock and
        the signal handlers only while it runs, and always releases them."""
        self.stop.install()  # SIGTERM/SIGINT/SIGUSR1 → finish the step, checkpoint, exit
        try:
            with self:
                last_eval = self._loop()
        finally:
            self.stop.restore()
            self.logger.close()
        evals = {k: v for k, v in last_eval.items() if k.startswith("val_")}
        if last_eval:
            evals["eval_step"] = last_eval["step"]
        return {"step": self.step, "tokens": self.tokens, "elapsed_sec": self.elapsed, **evals}

    def _loop(self) -> dict[str, float]:
        t = self.cfg.train
        last_eval: dict[str, float] = {}
        start, elapsed0 = time.perf_counter(), self.elapsed
        console = TrainConsole(t.max_steps, self.step, self.show_progress, self.dist.is_rank0)
        if self.samples.skip_reason:
            self.logger.event("sample_skipped", self.step, reason=self.samples.skip_reason)
            console.print(f"no text samples: {self.samples.skip_reason}")
        with console:
            window_start, window_tokens, window_flops = time.perf_counter(), 0, 0.0
            while self.step < t.max_steps:
                self._set_lr(lr := self._lr(self.step))
                with self.logger.step(self.step):
                    out = self.train_step()  # None: sync-free, a rollback was found due late
                if out is not None and self._boundary(self.step + 1):
                    self._settle(out)  # log/eval/checkpoint steps read this step's values now
                if self.guard.rollback_due and self.rollback():  # spikes persisted
                    window_start, window_tokens, window_flops = time.perf_counter(), 0, 0.0
                    continue
                if out is None:  # the rollback was impossible: run the abandoned step again
                    continue
                self.step += 1
                console.step(self.step)  # the bar moves every step; ETA of a long run
                self.tokens += out["tokens"] * self.dist.dp_size
                window_tokens += out["tokens"]
                window_flops += out["flops"]
                self.elapsed = elapsed0 + time.perf_counter() - start
                done = self.step == t.max_steps
                if self.step % t.log_every == 0 or done:
                    window_sec = time.perf_counter() - window_start
                    rec = self._train_record(
                        out, lr, window_tokens / window_sec, window_flops / window_sec
                    )
                    self.logger.log(rec)
                    console.update(self.step, rec)
                    window_start, window_tokens, window_flops = time.perf_counter(), 0, 0.0
                paused = time.perf_counter()
                # signal, deadline, or (WSD under --max-time) the early decay is done
                stop = self.stop.reason(self.elapsed) or self.lr_ctl.after_step(
                    self.step, self.elapsed
                )
                if stop and self.deferred is not None and self.deferred.pending is not None:
                    self._settle()  # a stop's checkpoint must follow the guard's verdicts
                    if self.guard.rollback_due and self.rollback():
                        continue  # the stop request is still set: the next step stops
                final = done or (stop is not None and not self.stop.by_signal)
                if self.step % t.eval_every == 0 or final:  # a deadline run ends evaluated
                    last_eval = self._eval_and_report(console)
                    if self.task is not None:  # fine-tuning: patience spent -> stop here
                        stop = self.task.on_eval(self.step, last_eval) or stop
                if self.samples.due(self.step) and self.dist.is_rank0:
                    with self._eager_if_graphed():
                        text = self.samples.sample(self.model, t.seed + self.step)
                    self.logger.event("sample", self.step, text=text)
                    console.print(f"step {self.step}: sample: {text!r}")
                if self.step % t.checkpoint_every == 0 or done or stop:
                    self.elapsed = elapsed0 + time.perf_counter() - start
                    console.print(f"step {self.step}: checkpoint saved to {self.save()}")
                window_start += time.perf_counter() - paused  # eval/checkpoint is not train time
                if stop:
                    console.print(f"step {self.step}: stopped ({stop}); --resume continues")
                    break
        return last_eval

    def _eval_and_report(self, console: TrainConsole) -> dict[str, float]:
        last_eval = self.evaluate()
        if self.lr_ctl.on_eval(last_eval["val_loss"]):  # plateau schedule
            self.logger.event("lr_reduced", self.step, lr=self._lr(self.step))
        console.print(self._val_line(last_eval))
        if self.on_eval is not None:  # e.g. a sweep's pruner: StopRun ends the run
            self.on_eval(last_eval)
        return last_eval

    def _boundary(self, step: int) -> bool:
        """Steps after which the loop logs, evaluates or checkpoints."""
        t = self.cfg.train
        every = (t.log_every, t.eval_every, t.checkpoint_every)
        return step == t.max_steps or any(step % n == 0 for n in every)

    def rollback(self) -> bool:
        """Back to the last good checkpoint and past the data read since it; records the
        window's documents in bad_windows.jsonl (train/rollback.py). False when there is no
        checkpoint before the spikes (the guard then stops the run as they persist)."""
        bad = list(self.guard.bad)
        at_step = bad[-1].step + 1  # the step that made it due (a sync-free step reads it late)
        ckpt = last_good_checkpoint(self.ckpt_root, bad[0].step)
        if ckpt is None or self.task is not None:  # fine-tuning data has no document index
            self.guard.can_roll_back = False
            self.logger.event("rollback_impossible", at_step, first_bad_step=bad[0].step)
            return False
        rollbacks, skipped = self.guard.rollbacks + 1, self.guard.skipped
        record = None
        if self.dist.is_rank0:
            index = DocumentIndex(self.cfg.data.path, self.manifest)
            record = bad_window_record(
                rollback=rollbacks,
                at_step=at_step,
                checkpoint=ckpt,
                bad=bad,
                position=self.sampler.position,
                span=self.source.token_span,
                index=index,
            )
        pos = self.sampler.position
        window = pos(bad[-1].step + 1) - pos(checkpoint_step(ckpt))
        self._restore(self.engine.load(ckpt, require=LOOP_KEYS))  # collective
        self.guard.rollbacks, self.guard.skipped = rollbacks, skipped
        self.sampler.skips.add(self.step, window)  # skips since are kept: all at or before ckpt
        if record is not None:
            append_record(self.run_dir, record)
            dropped = drop_checkpoints_after(self.ckpt_root, self.step)
            self.logger.rewind(self.step)  # the abandoned branch's train/eval records
            self.logger.event(
                "rollback",
                at_step,
                to_step=self.step,
                rollback=rollbacks,
                skipped_samples=window,
                first_step=record["first_step"],
                last_step=record["last_step"],
                documents=len(record["documents"]),
                spike_documents=len(record["spike_documents"]),
                dropped_checkpoints=dropped,
            )
        barrier()
        return True

    def _lr(self, step: int) -> float:
        return self.lr_ctl.lr(step)  # lr_at(step, ...) unless plateau / deadline-planned WSD

    def _set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _train_record(
        self, out: dict[str, float], lr: float, tok_s: float, flop_s: float
    ) -> dict[str, Any]:
        rec = {
            "step": self.step,
            "tokens": self.tokens,
            "loss": out["loss"],
            "lr": lr,
            "grad_norm": out["grad_norm"],
            "tokens_per_sec": tok_s,
            "elapsed_sec": self.elapsed,
            "flops_per_sec": flop_s,
        }
        if self.objective.next_token:  # else exp(loss) is no perplexity
            rec["ppl"] = math.exp(min(out["loss"], 50.0))
        rec.update(self.objective.metrics(out["totals"]))  # token_acc, rtd_acc, ...
        rec.update(self.logger.measurements(rec))  # step-time split, memory, GPU, norms
        return rec

    def _eager_if_graphed(self) -> AbstractContextManager:
        """Eval, samples and --auto-micro-batch trials of a CUDA-graph run go eager: compiled
        calls outside a backward (each block, the loss) would each start a new graph
        generation that frees the previous call's outputs, and every new shape they run
        would be captured, its memory pool kept."""
        return torch.compiler.set_stance("force_eager") if self.cuda_graphs else nullcontext()

    def evaluate(self) -> dict[str, float]:
        """The objective's val metrics (`llmtrain.eval.evaluate`) as `val_*` keys, logged."""
        with self._eager_if_graphed():
            return self._evaluate()

    def _evaluate(self) -> dict[str, float]:
        res = evaluate(
            self.model,
            self.objective,
            self.val_source,
            max_items=self.val_items,
            micro_batch_size=self.cfg.train.micro,
            device=self.prec.device,
            autocast=self.prec.autocast,
            split=self.val_split,  # bytes/tokens of a prepared split (bits per byte)
        )
        rec = {"step": self.step, "tokens": self.tokens}
        rec |= {f"val_{k}": v for k, v in res.items() if k not in ("tokens", "targets")}
        if self.task_eval is not None:
            rec |= self.task_eval(self.model, self.prec.device, self.prec.autocast)
        rec["elapsed_sec"] = self.elapsed
        self.logger.log(rec)
        self.last_val_loss = res["loss"]  # kept in the checkpoint: retention keeps the best
        if self.task is not None:  # a fine-tune's chosen metric picks the best instead
            self.last_score = self.task.score(rec)
        return rec

    def _val_line(self, ev: dict[str, float]) -> str:
        """`step N: val loss L[, ppl P, bpb B][, <the objective's headline metrics>]`."""
        line = f"step {self.step}: val loss {ev['val_loss']:.4f}"
        if "val_ppl" in ev:  # only where the objective defines them
            line += f", ppl {ev['val_ppl']:.2f}"
        if "val_bpb" in ev:
            line += f", bpb {ev['val_bpb']:.4f}"
        for k in self.objective.headline:
            line += f", {k} {ev[f'val_{k}']:.4f}"
        return line

    def save(self) -> Path:
        state = {
            "step": self.step,
            "tokens": self.tokens,
            "elapsed_sec": self.elapsed,
            "loader_sample": self.sampler.position(self.step),
            "data_skips": self.sampler.skips.state_dict(),  # windows dropped by rollbacks
            "data": str(self.cfg.data.path),
            "tokenizer_sha256": self.manifest["tokenizer"].get("sha256") if self.manifest else None,
            "val_loss": getattr(self, "last_val_loss", None),
            "val_score": getattr(self, "last_score", None),  # lower = better (fine-tuning)
            "task": self.task.state_dict() if self.task is not None else {},
            "guard": self.guard.state_dict(),
            "lr": self.lr_ctl.state_dict(),  # plateau state, deadline-planned decay start
            "world_size": self.dist.world_size,
            "dp_size": self.dist.dp_size,  # eval repeats the per-rank micro-batch (api.evaluate)
        }
        t0 = time.perf_counter()
        path = self.engine.save(  # full, DCP (FSDP/TP: any world size) or DeepSpeed's
            self.ckpt_root,
            self.step,
            state,
            self.recorded_config(),
            self.cfg.train.keep_last,
            protect=self.protected,  # the last verified checkpoint of a --no-verify resume
        )
        self.logger.event(
            "checkpoint", self.step, path=str(path), save_sec=time.perf_counter() - t0
        )
        return path
