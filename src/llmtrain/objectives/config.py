"""`ObjectiveConfig` (the `objective` section of a run config), the objective table, and
`check_objective`, which rejects an objective the model architecture cannot train."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from torch import nn

from llmtrain.config.core import ConfigSection
from llmtrain.errors import ConfigError
from llmtrain.models.config import ModelConfig
from llmtrain.objectives.base import Objective
from llmtrain.objectives.clm import CLM, PrefixLM
from llmtrain.objectives.electra import DISC_WEIGHT, ReplacedTokenDetection
from llmtrain.objectives.mlm import MLM, NextSentence, SentenceOrder
from llmtrain.objectives.span import SpanCorruption

OBJECTIVES: dict[str, type[Objective]] = {
    "clm": CLM,
    "prefix_lm": PrefixLM,
    "mlm": MLM,
    "sop": SentenceOrder,
    "nsp": NextSentence,
    "span": SpanCorruption,
    "electra": ReplacedTokenDetection,
}


@dataclass
class ObjectiveConfig(ConfigSection):
    _prefix = "objective"

    mask_prob: float = 0.15  # MLM: share of tokens selected
    mask_token_frac: float = 0.8  # of the selected: replaced by MASK
    random_token_frac: float = 0.1  # of the selected: replaced by a random token
    # MLM: select whole words. true / "tokenizer": word starts from the tokenizer's pieces
    # (each Han character a word); "jieba": Han runs cut into words by jieba (Chinese
    # BERT-wwm), needs `pip install 'llmtrain[zh]'`; false: single tokens.
    whole_word: bool | Literal["tokenizer", "jieba"] = False
    noise_density: float = 0.15  # span: share of tokens corrupted
    mean_span: float = 3.0  # span: mean noise-span length
    sentence_weight: float = 1.0  # SOP/NSP loss weight relative to the MLM mean
    disc_weight: float = DISC_WEIGHT  # ELECTRA: discriminator loss weight λ (paper: 50)
    label_smoothing: float = 0.0  # share of target mass spread uniformly, in [0, 1)
    z_loss: float = 0.0  # coefficient of (log Z)² per target token
    # the LM head's matmul and its cross-entropy as one op, chunk by chunk, never holding the
    # (tokens × vocab) logits (clm, prefix_lm, sft, mlm, sop, nsp, span; objectives/fused_loss.py).
    # auto: on for heads of >= 2^19 logits (rows × vocab; smaller ones are faster plain)
    # unless the run compiles on a GPU (Inductor fuses the loss itself; a compiled CPU run
    # keeps the op: measured faster), is tensor parallel or DeepSpeed ZeRO-3 (the head
    # weight is not a plain tensor there)
    fused_loss: Literal["auto", "on", "off"] = "auto"
    loss_chunk_mib: float = 1024  # fused_loss: most fp32 logits held at once (MiB)

    def validate(self) -> None:
        for name in ("mask_prob", "noise_density"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ConfigError(f"objective.{name} must be in (0, 1), got {getattr(self, name)}")
        if (
            self.mask_token_frac + self.random_token_frac > 1.0
            or min(self.mask_token_frac, self.random_token_frac) < 0
        ):
            raise ConfigError(
                "objective.mask_token_frac + objective.random_token_frac must be in [0, 1]; "
                f"got {self.mask_token_frac} + {self.random_token_frac}"
            )
        if self.mean_span < 1:
            raise ConfigError(f"objective.mean_span must be >= 1, got {self.mean_span}")
        if self.disc_weight < 0:
            raise ConfigError(f"objective.disc_weight must be >= 0, got {self.disc_weight}")
        if not 0.0 <= self.label_smoothing < 1.0 or self.z_loss < 0:
            raise ConfigError("objective.label_smoothing must be in [0, 1) and z_loss >= 0")
        if not self.loss_chunk_mib > 0:
            raise ConfigError(
                f"objective.loss_chunk_mib must be > 0 (MiB of logits per chunk), got "
                f"{self.loss_chunk_mib}; e.g. 1024"
            )


def check_objective(name: str, model: ModelConfig) -> None:
    """Raise ConfigError when `model` cannot be trained with objective `name`, saying why."""
    if name not in OBJECTIVES:
        raise ConfigError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}")
    cls = OBJECTIVES[name]
    if model.architecture not in cls.architectures:
        why = {
            "decoder": "it predicts the next token, which a bidirectional model can see",
            "encoder": "it predicts masked tokens from both sides, which needs bidirectional "
            "attention (a causal decoder sees only the left)",
            "encoder_decoder": "its corrupted input and span targets need an encoder and a decoder",
        }[cls.architectures[0]]
        raise ConfigError(
            f"train.objective={name!r} needs model.architecture="
            f"{' or '.join(repr(a) for a in cls.architectures)} (got {model.architecture!r}): "
            f"{why}"
        )
    if getattr(cls, "needs_generator", False) != bool(model.generator_scale):
        raise ConfigError(
            f"train.objective={name!r} and model.generator_scale={model.generator_scale} do "
            "not fit: ELECTRA (objective 'electra') trains a generator + discriminator, which "
            "model.generator_scale > 0 builds (e.g. 0.25), and only ELECTRA trains one"
        )
    if cls.needs_sentence_head and not model.sentence_head:
        raise ConfigError(
            f"train.objective={name!r} classifies sentence pairs: set model.sentence_head=true"
        )
    if cls.needs_sentence_head and model.type_vocab_size not in (0, 2):
        raise ConfigError("SOP/NSP use two segment types: set model.type_vocab_size to 0 or 2")


def build_objective(
    name: str,
    cfg: ObjectiveConfig,
    vocab_size: int,
    block_size: int,
    seed: int,
    tokenizer_dir: str | Path | None = None,
) -> Objective:
    """The objective `name` for a tokenizer of `vocab_size` ids, with the typed options of
    `cfg`. The tokenizer (a directory) is read only for whole-word masking (its word
    boundaries)."""
    words = None
    if cfg.whole_word:
        if tokenizer_dir is None or not Path(tokenizer_dir).is_dir():
            raise ConfigError(
                f"objective.whole_word={cfg.whole_word!r} needs the data's tokenizer directory"
            )
        from llmtrain.tokenizer import load_tokenizer
        from llmtrain.tokenizer.words import WordBoundaries

        segmenter = "jieba" if cfg.whole_word == "jieba" else None
        words = WordBoundaries(load_tokenizer(tokenizer_dir), segmenter)
    return OBJECTIVES[name](vocab_size, cfg, seed=seed, block_size=block_size, words=words)


def freeze_unused_heads(model: nn.Module, objective: Objective) -> list[str]:
    """Freeze the modules `objective` never calls (`Objective.unused_modules`, e.g. the
    SOP/NSP head of a `bert-*` preset under MLM): DDP would otherwise wait forever for their
    gradients ("Expected to have finished reduction"), and they would stay at init anyway.
    Returns the frozen parameter names; the optimizer then leaves them out."""
    unused = {id(p) for m in objective.unused_modules(model) for p in m.parameters()}
    frozen = []
    for name, p in model.named_parameters():
        if id(p) in unused:
            p.requires_grad_(False)
            frozen.append(name)
    return frozen
