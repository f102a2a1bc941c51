"""`PrepareConfig`: every knob of `llmtrain prepare`, validated with errors that name the fix.

`tokenizer` is a kind from `TOKENIZER_KINDS` (trained on the train split) or the path of a
saved tokenizer directory / Hugging Face tokenizer.json / sentencepiece .model (used as is). The cleaning steps beyond
normalise + exact dedup (quality, language, PII, near-dedup) are off unless switched on.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from llmtrain.config.core import ConfigSection
from llmtrain.data.prepare.language import DEFAULT_LANGUAGE_ALIASES
from llmtrain.data.prepare.minhash import LSH_PRESETS, LSHConfig
from llmtrain.data.prepare.quality import quality_steps
from llmtrain.data.prepare.textstats import check_segmenter
from llmtrain.errors import ConfigError
from llmtrain.tokenizer.train import DEFAULT_TRAIN_BYTES, TOKENIZER_KINDS, check_vocab_size


def _cpu_count() -> int:
    return os.cpu_count() or 1


@dataclass
class PrepareConfig(ConfigSection):
    tokenizer: str = "bpe"  # a TOKENIZER_KINDS entry, or a saved tokenizer dir / .json / .model
    vocab_size: int = 8192  # subword target; char/byte derive theirs
    val_fraction: float = 0.1  # nanoGPT's 90/10
    workers: int = field(default_factory=_cpu_count)  # threads for BPE encoding
    text_field: str = "text"  # JSONL field holding the text, dotted for nested ("a.b")
    seed: int = 1337  # seeds the document split
    shard_tokens: int = 100_000_000  # start a new shard past this many tokens
    min_chars: int = 1  # drop documents shorter than this (after normalisation)
    fix_encoding: bool = True  # repair mojibake (UTF-8 read as Latin-1/cp1252/MacRoman) with ftfy
    skip_bad_files: bool = False  # skip (and report) undecodable files and bad JSONL lines
    ignore_unknown: bool = False  # skip files of unknown type (default: read them if UTF-8 text)
    overwrite: bool = False  # replace a complete DATA_DIR
    tokenizer_train_bytes: int = DEFAULT_TRAIN_BYTES  # cap on text fed to tokenizer training
    # off | web (Gopher quality + repetition, C4, FineWeb line rules)
    quality: Literal["off", "web"] = "off"
    quality_set: list[str] = field(default_factory=list)  # "filter[.script].field=value"
    # Chinese words for the quality filters: chars | jieba (zh extra)
    zh_words: Literal["chars", "jieba"] = "chars"
    languages: list[str] = field(default_factory=list)  # keep only these (ISO 639-1); [] = all
    detect_language: bool = False  # tag languages (report's language mix) without filtering
    # detected label -> the code it counts as (Chinese varieties -> zh); {} keeps raw labels
    language_aliases: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_LANGUAGE_ALIASES))
    pii: bool = False  # replace e-mails, phones, IPs, card and ID numbers with placeholders
    near_dedup: bool = False  # MinHash LSH near-duplicate removal
    # recall (28x4 bands + signature check, default) | fineweb (FineWeb's 14x8)
    near_dedup_preset: Literal["recall", "fineweb"] = "recall"
    near_dedup_threshold: float | None = None  # replaces the preset's signature-check threshold
    decontaminate: list[str] = field(default_factory=list)  # evaluation files (JSONL / text)
    decontaminate_ngram: int = 13  # shared word n-gram length that marks contamination
    # drop (remove contaminated documents) | flag (keep them, annotated in --keep-text)
    decontaminate_mode: Literal["drop", "flag"] = "drop"
    keep_text: bool = False  # also write documents.jsonl: the cleaned text the model sees
    shard_index: int = 0  # this part of a --num-shards run (0-based)
    num_shards: int = 1  # split the input files into this many independent parts
    resume: bool = False  # skip a complete DATA_DIR; go on from the checkpoint of a crashed one
    checkpoint_bytes: int = 64 << 20  # checkpoint after each this much input read / text packed

    @property
    def lsh(self) -> LSHConfig:
        """The near-dedup banding and check: the preset, with `near_dedup_threshold` applied."""
        if self.near_dedup_preset not in LSH_PRESETS:
            raise ConfigError(
                f"near_dedup_preset = {self.near_dedup_preset!r} is not a preset; choose one of "
                f"{', '.join(LSH_PRESETS)} (recall: 28 bands x 4 rows + signature check; "
                "fineweb: FineWeb's 14 x 8)"
            )
        lsh = LSH_PRESETS[self.near_dedup_preset]
        if self.near_dedup_threshold is not None:
            lsh = dataclasses.replace(lsh, threshold=self.near_dedup_threshold)
        lsh.validate()
        return lsh

    @property
    def trains_tokenizer(self) -> bool:
        return self.tokenizer in TOKENIZER_KINDS

    def validate(self) -> None:
        if not self.trains_tokenizer and not Path(self.tokenizer).exists():
            raise ConfigError(
                f"tokenizer = {self.tokenizer!r} is neither a kind ({', '.join(TOKENIZER_KINDS)}) "
                "nor an existing tokenizer directory / tokenizer.json / .model path"
            )
        if self.trains_tokenizer:
            check_vocab_size(self.tokenizer, self.vocab_size)
        if not 0.0 < self.val_fraction <= 0.5:
            raise ConfigError(
                f"val_fraction = {self.val_fraction} must be in (0, 0.5]; 0.1 keeps 10% for "
                "validation (nanoGPT's 90/10), 0.01-0.05 suits large corpora"
            )
        self._check_positive("workers", self.workers, "the number of CPU cores")
        self._check_positive("shard_tokens", self.shard_tokens, "e.g. 100000000")
        self._check_positive("min_chars", self.min_chars, "1 keeps every non-empty document")
        self._check_positive("tokenizer_train_bytes", self.tokenizer_train_bytes, "e.g. 268435456")
        self._check_positive("checkpoint_bytes", self.checkpoint_bytes, "e.g. 67108864")
        check_segmenter(self.zh_words)
        quality_steps(self.quality, self.quality_set, self.zh_words)  # names the bad setting
        _ = self.lsh  # names a bad near-dedup preset or threshold
        for code in self.languages:
            if not (code.isalpha() and 2 <= len(code) <= 3):
                raise ConfigError(f"languages: {code!r} is not an ISO 639-1 code; give e.g. en,zh")
        for label, code in self.language_aliases.items():
            if not all(c.isalpha() and 2 <= len(c) <= 3 for c in (label, code)):
                raise ConfigError(
                    f"language_aliases: {label!r} -> {code!r} is not a pair of language codes; "
                    "give e.g. wuu=zh,yue=zh"
                )
        self._check_positive("decontaminate_ngram", self.decontaminate_ngram, "13 as in GPT-3")
        self._check_positive("num_shards", self.num_shards, "1 runs everything in one part")
        if not 0 <= self.shard_index < self.num_shards:
            raise ConfigError(
                f"shard_index = {self.shard_index} must be in 0..{self.num_shards - 1} "
                f"(num_shards = {self.num_shards}); a Slurm array passes $SLURM_ARRAY_TASK_ID"
            )
        if self.num_shards > 1 and self.tokenizer not in ("byte",) and self.trains_tokenizer:
            raise ConfigError(
                f"tokenizer = {self.tokenizer!r} would be trained separately in each of the "
                f"{self.num_shards} parts, so their shards could not be merged; train one first "
                "(`llmtrain prepare SAMPLE --out tok_run --tokenizer ...`) and pass "
                "--tokenizer tok_run/tokenizer to every part (or use --tokenizer byte)"
            )
        if not self.text_field or any(not p for p in self.text_field.split(".")):
            raise ConfigError(
                f"text_field = {self.text_field!r} is empty or malformed (e.g. 'text')"
            )

    @staticmethod
    def _check_positive(name: str, value: int, hint: str) -> None:
        if value < 1:
            raise ConfigError(f"{name} = {value} must be at least 1 ({hint})")
