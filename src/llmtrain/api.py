"""The Python API: `prepare`, `train`, `finetune`, `evaluate`, `generate`, `export`, with the CLI's names
(the CLI commands are thin shells over these). `import llmtrain as lt` reaches them lazily,
so importing the package stays fast:

    data = lt.prepare(["my_texts/"], out="data/mine", tokenizer="bpe", vocab_size=8192)
    run = lt.train(data, out="runs/mine", preset="gpt2-mini", max_steps=500)
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmtrain.errors import CheckpointError, ConfigError

PathLike = str | os.PathLike


@dataclass(frozen=True)
class Data:
    """A prepared DATA_DIR (what `prepare` wrote); usable wherever a path is."""

    path: Path
    manifest: dict[str, Any] = field(repr=False, default_factory=dict)

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class Run:
    """A run directory (what `train` wrote) and the summary `fit()` returned; usable
    wherever a path is (evaluate, generate, export, `llmtrain monitor`)."""

    path: Path
    result: dict[str, Any] = field(default_factory=dict)
    exit_code: int = 0  # 0 done (or time budget spent), 75 stopped by a signal

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)


def prepare(
    inputs: PathLike | Iterable[PathLike],
    out: PathLike,
    *,
    quiet: bool = False,
    **options: Any,
) -> Data:
    """Raw text (files, folders, "builtin:python") -> DATA_DIR `out`. `options` are the
    `llmtrain prepare` flags as PrepareConfig fields (tokenizer="bpe", vocab_size=8192,
    languages=["en", "zh"], ...), validated with the CLI's messages."""
    from llmtrain.config import config_from_dict
    from llmtrain.data.prepare import PrepareConfig, prepare_corpus

    names = {f.name for f in dataclasses.fields(PrepareConfig)}
    for key in options:
        _known(key, names, "prepare option")
    cfg = config_from_dict(PrepareConfig, options)
    items = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    manifest = prepare_corpus([os.fspath(i) for i in items], os.fspath(out), cfg, quiet=quiet)
    return Data(Path(out), manifest)


def _known(key: str, names: Iterable[str], what: str) -> None:
    if key not in names:
        close = difflib.get_close_matches(key, list(names), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown {what} {key!r}{hint}")


def _section_of(key: str) -> str:
    """'train.max_steps' for 'max_steps': the one RunConfig section with that field."""
    from llmtrain.train.config import RunConfig

    if "." in key:
        return key
    hints = typing.get_type_hints(RunConfig)
    found = [
        f"{s.name}.{key}"
        for s in dataclasses.fields(RunConfig)
        if key in {f.name for f in dataclasses.fields(hints[s.name])}
    ]
    if len(found) > 1:
        raise ConfigError(
            f"{key!r} is in several config sections ({', '.join(found)}); pass "
            f"overrides={{{found[0]!r}: ...}}"
        )
    if not found:
        every = [
            f.name for s in dataclasses.fields(RunConfig) for f in dataclasses.fields(hints[s.name])
        ]
        _known(key, every, "train option")
    return found[0]


def run_overrides(options: Mapping[str, Any]) -> list[str]:
    """`--set` strings of keyword options: a bare field name (max_steps) goes to the one
    section that has it (train.max_steps); dotted names are taken as they are."""
    return [f"{_section_of(k)}={json.dumps(v)}" for k, v in options.items()]


def plan(
    data: PathLike,
    *,
    minutes: float | None = None,
    gpu_hours: float | None = None,
    flops: float | None = None,
    family: str = "gpt2",
    device: str = "auto",
    gpu: str | None = None,
    seq: int | None = None,
    memory_gb: float | None = None,
    out: PathLike | None = None,
) -> Any:
    """A run config from a budget (`llmtrain.plan.make_plan`): `.config` (a dict for
    `train(..., config=...)`), `.reasoning` (lines), `.memory` (the estimate). With `out`, the
    config is also written there as JSON."""
    from llmtrain.plan import Budget, make_plan
    from llmtrain.utils.io import atomic_write_json

    budget = Budget(minutes=minutes, gpu_hours=gpu_hours, flops=flops)
    result = make_plan(os.fspath(data), budget, family=family, device=device, gpu=gpu,
                       seq=seq, memory_limit_gb=memory_gb)  # fmt: skip
    if out is not None:
        atomic_write_json(Path(out), result.config)
    return result


def train(
    data: PathLike | None,
    out: PathLike,
    *,
    preset: str | None = None,
    config: PathLike | Iterable[PathLike] = (),
    overrides: Mapping[str, Any] | Iterable[str] = (),
    resume: bool = False,
    resume_from: int | PathLike | None = None,
    verify: bool = True,
    init_from: PathLike | None = None,
    max_time: float | None = None,
    auto_micro_batch: bool = False,
    quiet: bool = False,
    plan: str | None = None,
    **options: Any,
) -> Run:
    """Train on the prepared `data` into run directory `out`; returns the `Run`. Settings,
    lowest first: `resume`'s saved config or `init_from`'s HF config, `preset`, `config`
    files, `overrides` ({"train.lr": 3e-4} or ["train.lr=3e-4"], as --set), then `options`
    (max_steps=500, n_layer=2: a field name of one config section, or dotted).
    `resume_from` (a step or checkpoint directory) resumes from that checkpoint; `verify=False`
    loads one whose checksums do not match."""
    from llmtrain.checkpoint import check_run_dir
    from llmtrain.config import load_json_file
    from llmtrain.train.config import load_run_config
    from llmtrain.train.trainer import Trainer

    out = Path(out)
    resume = resume or resume_from is not None
    base = None
    if resume and (out / "config.json").is_file():
        base = load_json_file(out / "config.json")  # the run's own config; flags may extend it
    if init_from and base is None:  # the HF config, below preset/config/overrides
        from llmtrain.models.hf_interop import hf_run_defaults

        base = hf_run_defaults(init_from)
    if plan is not None and base is None:  # --plan BUDGET: the planned config, lowest first
        from llmtrain.plan import Budget, make_plan

        if data is None:
            raise ConfigError("--plan needs --data DATA_DIR (the plan measures and sizes on it)")
        made = make_plan(os.fspath(data), Budget.parse(plan))
        print("plan:\n" + "\n".join(f"- {line}" for line in made.reasoning))
        base = made.config
    sets = (
        run_overrides(overrides) if isinstance(overrides, Mapping) else list(overrides)
    ) + run_overrides(options)
    if data is not None:
        sets.append(f"data.path={json.dumps(os.fspath(data))}")
    if max_time is not None:
        sets.append(f"train.max_time_sec={float(max_time)}")
    if auto_micro_batch:
        sets.append("train.auto_micro_batch=true")
    files = [config] if isinstance(config, str | os.PathLike) else list(config)
    cfg = load_run_config(files, preset, sets, base=base)
    check_run_dir(out)  # after the config: a bad value leaves nothing behind
    if not cfg.data.path:
        raise ConfigError(
            "no data: pass --data DATA_DIR (a directory written by `llmtrain prepare`)"
        )
    trainer = Trainer(
        cfg,
        out,
        resume=resume,
        show_progress=not quiet,
        resume_from=resume_from,
        verify=verify,
    )
    say = print if trainer.dist.is_rank0 else (lambda *a, **k: None)
    _describe(trainer, say)
    result = trainer.fit()
    say(json.dumps({"run_dir": str(out), **result}, indent=2))
    say(
        f"outputs: config {out / 'config.json'}, metrics {out / 'metrics.jsonl'}, "
        f"checkpoints {out / 'checkpoints'}"
    )
    return Run(out, result, trainer.stop.exit_code)


def _describe(trainer: Any, say: Callable[..., None]) -> None:
    """The model and batch lines printed before training."""
    cfg = trainer.cfg  # the resolved config the trainer runs
    t, world = cfg.train, trainer.dist.world_size
    say(
        f"model: {cfg.model.n_layer} layers, {cfg.model.n_embd} dims, "
        f"{sum(p.numel() for p in trainer.model.parameters()) / 1e6:.2f}M parameters; "
        f"device {trainer.prec.device}, precision {trainer.prec.name}"
    )
    say(
        f"batch: {t.batch_size} sequences/step = {t.micro} micro-batch x {trainer.accum} "
        f"accumulation x {world} process{'es' if world > 1 else ''}"
        f"{f' ({cfg.distributed.strategy})' if world > 1 else ''}; "
        f"{t.batch_size * cfg.model.block_size:,} tokens/step"
    )


def evaluate(
    run: PathLike,
    *,
    data: PathLike | None = None,
    split: str = "val",
    max_tokens: int = 0,
    batch_size: int | None = None,
    precision: str | None = None,
    verify: bool = True,
    tune_decision: str | None = None,
) -> dict[str, Any]:
    """The run's (or checkpoint's) own objective on a prepared split (default: the val split
    of the data it was trained on), through the one `llmtrain.eval.evaluate`: its loss and
    metrics, perplexity and bits per byte where defined, with the checkpoint, step, data,
    split, objective and precision they are of (what `llmtrain eval` prints). `batch_size`
    and `precision` default to what the run's own val evals used (`eval_micro_batch`,
    `eval_precision`), so the run's last val numbers are repeated exactly."""
    from llmtrain.checkpoint.io import find_checkpoint, read_json
    from llmtrain.data.loader import TokenWindows
    from llmtrain.data.shards import open_split, read_manifest
    from llmtrain.errors import DataError
    from llmtrain.eval import evaluate as evaluate_objective
    from llmtrain.objectives import build_objective

    if read_json(find_checkpoint(run) / "config.json").get("finetune", {}).get("task"):
        from llmtrain.finetune.evaluate import evaluate_run

        # its val/test metrics, best checkpoint; `tune_decision`: tune a classifier's
        # decision on val now (finetune/decision.py) and report argmax beside it
        return evaluate_run(run, batch_size or 32, tune_decision)
    if tune_decision:
        raise ConfigError(f"tune_decision is for fine-tuned classifiers; {run} is not one")
    loaded = load(run, verify=verify)
    cfg = loaded.config
    data = os.fspath(data) if data is not None else cfg.data.path
    manifest = read_manifest(data)
    tok = manifest["tokenizer"]
    vocab = int(tok["vocab_size"])
    objective = build_objective(  # the run's objective, as the trainer built it
        cfg.train.objective,
        cfg.objective,
        vocab,
        cfg.model.block_size,
        cfg.train.seed,
        Path(data) / tok.get("path", "tokenizer"),
    )
    if vocab + objective.extra_vocab > cfg.model.vocab_size:
        raise DataError(
            f"{data} uses a tokenizer with {vocab} tokens but the model knows "
            f"{cfg.model.vocab_size - objective.extra_vocab}; evaluate on data prepared with "
            "the run's tokenizer"
        )
    prec = eval_precision(cfg, precision)
    loaded.model.to(prec.device)
    seq = cfg.model.block_size
    res = evaluate_objective(
        loaded.model,
        objective,
        TokenWindows(open_split(data, split), seq, split),
        max_items=max(1, max_tokens // seq) if max_tokens else None,
        micro_batch_size=batch_size or eval_micro_batch(cfg, loaded.checkpoint),
        device=prec.device,
        autocast=prec.autocast,
        split=manifest["splits"][split],
    )
    head = {"checkpoint": str(loaded.checkpoint), "step": loaded.step, "data": str(data)}
    head |= {"split": split, "objective": cfg.train.objective, "precision": prec.name}
    return {**head, **res}


def eval_micro_batch(cfg: Any, checkpoint: PathLike) -> int:
    """The per-process micro-batch the run's own val evals used: `train.micro_batch_size`,
    or (left unset) `TrainConfig.micro_for` the data-parallel ranks the checkpoint was trained
    on (recorded in its state.json; a 1-process run: the whole batch)."""
    from llmtrain.checkpoint.io import read_state

    state = read_state(checkpoint, keys=("step",))
    ranks = state.get("dp_size", state.get("world_size", 1))
    ok = isinstance(ranks, int) and not isinstance(ranks, bool) and ranks >= 1
    return cfg.train.micro_for(ranks if ok else 1)


def eval_precision(cfg: Any, precision: str | None = None) -> Any:
    """The precision evaluation runs under on this machine's device: `precision` when given,
    else the run's `train.precision` resolved as the trainer resolves it (`auto`: bf16 autocast
    on bf16-capable GPUs/CPUs). A run trained in fp16 (CUDA only) evaluates under `auto` on
    another device; the result names the precision used."""
    from llmtrain.errors import ConfigError
    from llmtrain.train.config import TrainConfig
    from llmtrain.train.precision import resolve_device, resolve_precision

    choices = typing.get_args(typing.get_type_hints(TrainConfig)["precision"])
    if precision is not None and precision not in choices:
        raise ConfigError(f"precision {precision!r} is not one of {', '.join(choices)}")
    wanted = precision or cfg.train.precision
    if wanted == "fp16" and resolve_device("auto").type != "cuda":
        if precision is not None:
            raise ConfigError("precision 'fp16' needs a CUDA GPU; on CPU use bf16, fp32 or auto")
        wanted = "auto"
    try:
        return resolve_precision(wanted, "auto", "off")
    except ConfigError as e:
        raise ConfigError(f"precision {wanted!r} cannot run here: {e}") from None


def generate(
    run: PathLike,
    prompt: str = "",
    *,
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    on_text: Callable[[str], Any] | None = None,
    model: Any = None,
) -> str:
    """`prompt` and its sampled continuation from a run or checkpoint. Options are checked
    before anything is produced; `on_text` receives the prompt, then each decoded piece
    as it comes (the CLI streams to stdout with it). `model`: an already loaded run
    (`load(run)`), to sample repeatedly without reloading."""
    from llmtrain.generation import check_sampling_args, generate_text

    check_sampling_args(temperature, top_k, top_p)
    if max_new_tokens < 0:
        raise ConfigError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    loaded = model or load(run)
    if loaded.tokenizer is None:
        raise CheckpointError(
            f"no tokenizer found for {loaded.checkpoint}: expected RUN_DIR/tokenizer/ or the "
            "run's data directory; re-run training or copy DATA_DIR/tokenizer into the run"
        )
    emit = on_text or (lambda s: None)
    pieces = [prompt]
    emit(prompt)
    for piece in generate_text(
        loaded.model,
        loaded.tokenizer,
        prompt,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
    ):
        pieces.append(piece)
        emit(piece)
    return "".join(pieces)


def finetune(base: PathLike, *, task: str, data: PathLike, out: PathLike, **options: Any) -> Run:
    """Fine-tune `base` (a run or a local HF directory) for `task` ("classify" | "sft") on
    `data` into `out` (`llmtrain finetune`): options are its flags (val, test, text_field,
    text_pair_field, label_field, lora_rank, overrides=["finetune.patience=3", ...],
    resume, show_progress). Returns the Run with the best checkpoint's val/test metrics."""
    from llmtrain.finetune.api import finetune as run_finetune

    result = run_finetune(os.fspath(base), task=task, data=os.fspath(data), out=out, **options)
    return Run(Path(out), result)


def load(run: PathLike, *, verify: bool = True) -> Any:
    """The model, config, tokenizer and step of a run (its latest checkpoint) or checkpoint,
    its checksums verified first (`verify=False` loads a damaged one anyway)."""
    from llmtrain.checkpoint.inference import load_trained

    return load_trained(os.fspath(run), verify=verify)


def export(
    run: PathLike,
    out: PathLike,
    *,
    target: str | None = None,
    tokenizer: bool = True,
    merge_lora: bool = False,
    verify: bool = True,
) -> dict[str, Any]:
    """Write a run (or checkpoint) as a verified Hugging Face directory `out`; `target`: a
    name of `llmtrain.models.hf.TARGETS` (default: inferred from the model). A fine-tuned
    run exports its best checkpoint, LoRA adapters merged, an SFT run's tokenizer with the
    chat tokens and template. `merge_lora`: write a plain llmtrain run with the adapters
    folded in instead (`llmtrain export --merge-lora`)."""
    from llmtrain.checkpoint.inference import load_trained
    from llmtrain.export import export_hf
    from llmtrain.export.finetuned import add_chat_template, merge_for_export, merged_run

    loaded = load_trained(os.fspath(run), best=True, verify=verify)
    if merge_lora:
        ckpt = merged_run(loaded, out)
        return {"checkpoint": str(ckpt), "merged_from": str(loaded.checkpoint)}
    tok = loaded.tokenizer if tokenizer else None
    model = merge_for_export(loaded.model)  # a LoRA run exports merged
    if loaded.config.finetune.task == "classify":  # ...ForSequenceClassification
        from llmtrain.export.finetuned import export_classifier_hf
        from llmtrain.finetune.decision import Decision
        from llmtrain.finetune.labels import LabelMap

        run_dir = loaded.checkpoint.parent.parent
        res = export_classifier_hf(model, out, tok, LabelMap.load(run_dir).names)
        decision = Decision.load(run_dir, loaded.step)
        if decision is not None:  # HF heads have no place for it: shipped beside, said
            decision.save(out)
            res["decision"] = (
                f"the run's tuned decision is not part of the HF model: add {decision.offsets} "
                "to log_softmax(logits) before the argmax (decision.json)"
            )
        return res
    res = export_hf(model, out, tokenizer=tok, target=target)
    chat = loaded.checkpoint.parent.parent / "chat.json"
    if tok is not None and chat.is_file():  # an SFT run: chat tokens + template
        from llmtrain.finetune.chat import CHAT_TEMPLATE, ChatFormat

        add_chat_template(out, ChatFormat.load(chat.parent), CHAT_TEMPLATE)
        res["chat_template"] = True
    return res
