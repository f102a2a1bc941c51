"""`FinetuneConfig`: the `finetune` section of a run config (data files and fields, labels,
split, class imbalance, head, LoRA, early stopping, chat tokens). Empty `task` = not a
fine-tuning run. Validated wherever it is built; errors name the key and the fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from llmtrain.errors import ConfigError
from llmtrain.models.heads import HeadConfig
from llmtrain.models.lora import LoraConfig

METRICS = ("macro_f1", "weighted_f1", "accuracy", "roc_auc", "loss")


@dataclass
class FinetuneConfig:
    task: Literal["", "classify", "sft"] = ""  # "" = pre-training run
    base: str = ""  # the run directory or local Hugging Face directory fine-tuned (--from)
    data: str = ""  # training file: .csv .tsv .jsonl .json .parquet (--data)
    val: str = ""  # validation file; "" = a stratified split of `data` (--val)
    test: str = ""  # test file; "" = a stratified split of `data` when test_fraction > 0
    val_fraction: float = 0.1  # share of `data` held out for val when no --val is given
    test_fraction: float = 0.0  # share of `data` held out for test when no --test is given
    split_seed: int = 0  # the stratified split is a pure function of (rows, seed)
    text_field: str = "text"  # classify: the text column (--text-field)
    text_pair_field: str = ""  # classify: an optional second text (pairs)
    label_field: str = "label"  # classify: the label column (--label-field)
    labels: list[str] = field(default_factory=list)  # label order; [] = sorted labels seen
    max_length: int = 0  # tokens per example (longer ones are cut, counted); 0 = block_size
    # imbalance: class-weighted loss ("balanced" = n / (k · count_c) from train, or one
    # weight per label), focal loss exponent (Lin et al. 2017; 0 = plain CE), oversampling
    # of minority classes to the majority count
    class_weights: Literal["none", "balanced"] | list[float] = "none"
    focal_gamma: float = 0.0  # focal loss exponent (Lin et al. 2017); 0 = plain cross-entropy
    oversample: bool = False  # repeat minority-class examples up to the majority count
    # after training, move the decision (per-class log-probability offsets; two classes: the
    # threshold) to maximise this val metric; saved as decision.json and applied by the
    # report, eval and predict (finetune/decision.py); none = the plain argmax
    tune_decision: Literal["none", "macro_f1", "weighted_f1", "accuracy"] = "none"
    head: HeadConfig = field(default_factory=HeadConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    # the val metric that picks the best checkpoint and drives early stopping
    best_metric: Literal["macro_f1", "weighted_f1", "accuracy", "roc_auc", "loss"] = "macro_f1"
    patience: int = 0  # evals without a better best_metric before stopping (0 = never)
    epochs: float = 0.0  # > 0: train.max_steps = epochs x train examples / batch size
    # sft: the roles' field and the chat tokens
    messages_field: str = "messages"
    add_chat_tokens: bool = True  # add <|im_start|>/<|im_end|> to the vocabulary if missing
    train_on_prompt: bool = False  # sft: also learn the system/user tokens (default: mask)

    def validate(self) -> None:
        for name in ("val_fraction", "test_fraction"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ConfigError(f"finetune.{name} must be in [0, 1), got {v}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ConfigError("finetune.val_fraction + finetune.test_fraction must be < 1")
        if self.focal_gamma < 0:
            raise ConfigError(f"finetune.focal_gamma must be >= 0, got {self.focal_gamma}")
        if self.patience < 0 or self.max_length < 0:
            raise ConfigError("finetune.patience and finetune.max_length must be >= 0")
        if isinstance(self.class_weights, list) and any(w <= 0 for w in self.class_weights):
            raise ConfigError(f"finetune.class_weights must be positive, got {self.class_weights}")
        if self.tune_decision != "none" and self.task == "sft":
            raise ConfigError("finetune.tune_decision is for classifiers; set it to 'none' for sft")
        if self.tune_decision != "none" and not self.val and self.val_fraction == 0:
            raise ConfigError(
                f"finetune.tune_decision={self.tune_decision!r} tunes on val data, and there is "
                "none: give --val FILE or finetune.val_fraction > 0"
            )
        if self.task and not self.data:
            raise ConfigError("finetune.data is empty: pass --data FILE (CSV, TSV, JSONL, Parquet)")
        self.lora.validate()
