"""`FinetuneTask`: everything a fine-tuning run gives the one `Trainer` in place of a prepared
data directory — the data source, the objective, the model (base weights + head + LoRA), the
evaluation each `eval_every` steps, the score that picks the best checkpoint and the early
stop. Built from the run config alone, so resume rebuilds it exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from llmtrain.errors import ConfigError
from llmtrain.eval import evaluate
from llmtrain.finetune.base import Base, load_base
from llmtrain.finetune.chat import ChatFormat, chat_format
from llmtrain.finetune.datasets import (
    ClassificationData,
    ExampleBatches,
    Oversampled,
    TextExamples,
    parse_rows,
)
from llmtrain.finetune.labels import (
    LabelMap,
    balanced_weights,
    class_counts,
    distribution_line,
    stratified_split,
)
from llmtrain.finetune.sft_data import SFTData
from llmtrain.finetune.tables import read_rows, require_field
from llmtrain.models import build_model
from llmtrain.models.heads import resize_vocab, task_model
from llmtrain.models.lora import count_parameters
from llmtrain.objectives.classify import Classify
from llmtrain.objectives.sft import SFT


class FinetuneTask:
    def __init__(self, cfg, say: Callable[[str], None] = print) -> None:
        self.cfg, self.f, self.say = cfg, cfg.finetune, say
        self.base: Base = load_base(self.f.base)
        self.tokenizer = self.base.tokenizer
        self.max_length = min(self.f.max_length or cfg.model.block_size, cfg.model.block_size)
        self.labels: LabelMap | None = None
        self.chat: ChatFormat | None = None
        self.report: dict[str, Any] = {}
        self.best, self.best_step, self.bad_evals = math.inf, None, 0
        if self.f.task == "classify":
            self._setup_classify()
        else:
            self._setup_sft()

    # ---- data ---------------------------------------------------------------------------
    def _setup_classify(self) -> None:
        f = self.f
        self.labels, train, parts = classification_splits(f, None, self.say, self.report)
        k = len(self.labels)
        if f.best_metric == "roc_auc" and k != 2:
            raise ConfigError(
                f"finetune.best_metric='roc_auc' is defined for two classes, but the data has "
                f"{k} ({', '.join(self.labels.names)}); use macro_f1, weighted_f1, accuracy "
                "or loss"
            )
        counts = class_counts(train.labels, k)
        self.say(f"classes ({k}): train {distribution_line(self.labels.names, counts)}")
        self.report["class_counts"] = {"train": dict(zip(self.labels.names, counts))}
        self.train = ClassificationData(self.tokenizer, train, self.max_length)
        self.val, self.test = (
            encode_split(self.tokenizer, parts[s], self.max_length, s, self.say, self.report)
            for s in ("val", "test")
        )
        self.report["train_examples"] = len(self.train)
        weights = None
        if f.class_weights == "balanced":
            weights = balanced_weights(counts)
        elif isinstance(f.class_weights, list):
            if len(f.class_weights) != k:
                raise ConfigError(
                    f"finetune.class_weights has {len(f.class_weights)} weights for {k} labels "
                    f"({', '.join(self.labels.names)}); give one per label"
                )
            weights = f.class_weights
        if weights is not None:
            self.say(
                "class weights: "
                + ", ".join(f"{n} {w:.3f}" for n, w in zip(self.labels.names, weights))
            )
        self.objective = Classify(
            k,
            self.cfg.objective,
            class_weights=weights,
            focal_gamma=f.focal_gamma,
            names=self.labels.names,
            seed=self.cfg.train.seed,
        )
        self.source = (
            Oversampled(self.train, train.labels, f.split_seed) if f.oversample else self.train
        )
        if f.oversample:
            self.say(f"oversampling: {len(self.train)} -> {len(self.source)} examples per epoch")
        self.f.head.n_classes = k

    def _setup_sft(self) -> None:
        f, cfg = self.f, self.cfg
        if cfg.model.architecture != "decoder":
            raise ConfigError(
                f"--task sft needs a decoder model; {f.base} is an {cfg.model.architecture}"
            )
        self.chat = chat_format(self.tokenizer, f.add_chat_tokens, f.base)
        vocab = max(cfg.model.vocab_size, self.tokenizer.vocab_size + self.chat.added)
        self.vocab_size = cfg.model.vocab_size = vocab  # the resolved run config

        def load(path: str) -> SFTData:
            d = SFTData(
                self.tokenizer,
                self.chat,
                read_rows(path),
                path,
                self.max_length,
                f.messages_field,
                f.train_on_prompt,
            )
            if d.skipped.total:
                self.say("warning: " + d.skipped.describe(path))
            return d

        self.train = self.source = load(f.data)
        self.val = load(f.val) if f.val else None
        if self.val is None and f.val_fraction > 0:  # a seeded random hold-out
            rest, held = stratified_split([0] * len(self.train), [f.val_fraction], f.split_seed)
            self.val = self.train.subset(held)
            self.train = self.source = self.train.subset(rest)
        self.test = load(f.test) if f.test else None
        self.objective = SFT(self.vocab_size, cfg.objective, seed=cfg.train.seed)
        self.report["train_examples"] = len(self.train)

    def batches(self, seed: int) -> ExampleBatches:
        """The shuffled training stream the Trainer reads by (step, micro, rank)."""
        return ExampleBatches(self.source, seed)

    # ---- model ---------------------------------------------------------------------------
    def build_model(self, device: torch.device, load_base_weights: bool) -> nn.Module:
        """The base model (its weights unless resuming), grown for chat tokens, wrapped with
        the head and LoRA; prints trainable vs total parameters."""
        mcfg = self.cfg.model
        base_vocab = int(self.base.model.get("vocab_size", mcfg.vocab_size))
        target_vocab = mcfg.vocab_size
        mcfg.vocab_size = base_vocab
        base = build_model(mcfg, device=device)
        if load_base_weights:
            self.base.load_weights(base)
        resize_vocab(base, target_vocab)
        mcfg.vocab_size = target_vocab
        head = self.f.head if self.f.task == "classify" else None
        model = task_model(base, head, self.f.lora)
        model.to(device)
        trainable, total = count_parameters(model)
        self.say(
            f"parameters: {trainable:,} trainable of {total:,} ({100 * trainable / total:.2f}%)"
            + (f", LoRA rank {self.f.lora.rank}" if self.f.lora.rank else "")
        )
        self.report["parameters"] = {"trainable": trainable, "total": total}
        return model

    # ---- evaluation ----------------------------------------------------------------------
    def evaluate(self, model: nn.Module, split: str, batch_size: int, device="cpu", autocast=None):
        """The objective's metrics on the val or test data ({} when there is none)."""
        data = self.val if split == "val" else self.test
        if data is None:
            return {}
        kw = {} if autocast is None else {"autocast": autocast}
        return evaluate(
            model, self.objective, data, micro_batch_size=batch_size, device=device, **kw
        )

    @property
    def best_metric(self) -> str:
        """What picks the best checkpoint: `finetune.best_metric` (classifiers), else val loss."""
        return self.f.best_metric if self.f.task == "classify" else "loss"

    def score(self, rec: dict[str, Any]) -> float:
        """Lower is better: val loss, or minus the chosen metric. An eval without that metric
        (ROC AUC of a val set holding one class) is scored by its loss, and said."""
        metric = self.best_metric
        if metric != "loss" and f"val_{metric}" not in rec:
            self.say(f"val {metric} undefined at this eval: its val loss is compared instead")
            metric = "loss"
        value = rec.get(f"val_{metric}", math.nan)
        return value if metric == "loss" else -value

    def on_eval(self, step: int, rec: dict[str, Any]) -> str | None:
        """Track the best score; a stop reason once `patience` evals brought no improvement."""
        s = self.score(rec)
        if s < self.best:
            self.best, self.best_step, self.bad_evals = s, step, 0
        else:
            self.bad_evals += 1
        if self.f.patience and self.bad_evals >= self.f.patience:
            return f"early stop: no better val {self.best_metric} in {self.bad_evals} evals (best at step {self.best_step})"
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step, "bad_evals": self.bad_evals}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.best, self.best_step, self.bad_evals = (
            s.get("best", math.inf),
            s.get("best_step"),
            s.get("bad_evals", 0),
        )

    def write_run_files(self, run_dir: Path) -> None:
        """Tokenizer, labels.json / chat.json beside the checkpoints."""
        self.tokenizer.save(run_dir / "tokenizer")
        if self.labels is not None:
            self.labels.save(run_dir)
        if self.chat is not None:
            self.chat.save(run_dir)


def _parse(f, path: str, labels: LabelMap | None, say, report: dict) -> TextExamples:
    rows = read_rows(path)
    require_field(path, rows, f.text_field, "--text-field")
    if f.text_pair_field:
        require_field(path, rows, f.text_pair_field, "--text-pair-field")
    require_field(path, rows, f.label_field, "--label-field")
    ex = parse_rows(rows, f.text_field, f.text_pair_field, f.label_field, labels)
    if ex.skipped.total:
        say("warning: " + ex.skipped.describe(path))
    report.setdefault("skipped", {})[path] = ex.skipped.to_dict()
    return ex


def classification_splits(
    f, labels: LabelMap | None, say: Callable[[str], None], report: dict
) -> tuple[LabelMap, TextExamples, dict[str, TextExamples | None]]:
    """(label map, train, {"val", "test"}) of a classification config: the given files, or a
    stratified split of the training file with seed `finetune.split_seed`. `labels` (a saved
    run's) pins the map; else `finetune.labels` or the sorted labels seen in training."""
    train = _parse(f, f.data, labels, say, report)
    if labels is None:
        labels = LabelMap.from_values(train.labels, f.labels)
        if f.labels:  # a label outside the given order is reported, not guessed
            train = _parse(f, f.data, labels, say, report)
        else:
            train.labels = [labels.get(y) for y in train.labels]
    parts: dict[str, TextExamples | None] = {"val": None, "test": None}
    held = [(k, getattr(f, f"{k}_fraction")) for k in ("val", "test")]
    held = [(k, fr) for k, fr in held if not getattr(f, k) and fr > 0]
    if held:
        cut = stratified_split(train.labels, [fr for _, fr in held], f.split_seed)
        for (k, _), idx in zip(held, cut[1:], strict=True):
            parts[k] = train.subset(idx)
        train = train.subset(cut[0])
    for k in ("val", "test"):
        if getattr(f, k):
            parts[k] = _parse(f, getattr(f, k), labels, say, report)
    return labels, train, parts


def encode_split(tokenizer, ex, max_length: int, name: str, say, report: dict):
    if ex is None:
        return None
    d = ClassificationData(tokenizer, ex, max_length)
    report[f"{name}_examples"] = len(d)
    if d.truncated:
        say(f"note: {d.truncated} {name} examples cut to {max_length} tokens")
    return d
