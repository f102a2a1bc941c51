"""`train_tokenizer(kind, texts, vocab_size)`: one entry point over every backend.

Kinds: byte-level "bpe", "unigram", "wordpiece" (HF `tokenizers`), "sentencepiece-bpe",
"sentencepiece-unigram" ("sentencepiece" = its default, unigram), "char" and "byte".
Training streams `texts` and stops after `max_bytes` of UTF-8 (default 256 MiB; 64 MiB for
SentencePiece, which holds its sentences in RAM): statistics converge long before that, and
the cap bounds memory whatever the corpus size (`train_memory_bound`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from llmtrain.errors import ConfigError
from llmtrain.tokenizer.base import Tokenizer
from llmtrain.tokenizer.bpe import check_bpe_vocab_size, train_bpe
from llmtrain.tokenizer.byte import ByteTokenizer
from llmtrain.tokenizer.char import CharTokenizer
from llmtrain.tokenizer.hf_models import (
    MIN_UNIGRAM_VOCAB,
    MIN_WORDPIECE_VOCAB,
    train_unigram,
    train_wordpiece,
)
from llmtrain.tokenizer.spm import MIN_SPM_VOCAB, SPM_TRAIN_BYTES, train_sentencepiece

TOKENIZER_KINDS = (
    "bpe",
    "unigram",
    "wordpiece",
    "sentencepiece",
    "sentencepiece-bpe",
    "sentencepiece-unigram",
    "char",
    "byte",
)
DEFAULT_TRAIN_BYTES = 256 * 2**20
_SPM_KINDS = {"sentencepiece": "unigram", "sentencepiece-unigram": "unigram", "sentencepiece-bpe": "bpe"}  # fmt: skip


def is_sentencepiece(kind: str) -> bool:
    return kind in _SPM_KINDS


def check_vocab_size(kind: str, vocab_size: int) -> None:
    """ConfigError when `vocab_size` cannot work for `kind` (char and byte ignore it)."""
    if kind == "bpe":
        check_bpe_vocab_size(vocab_size, kind)
    elif kind == "unigram":
        check_bpe_vocab_size(vocab_size, kind, MIN_UNIGRAM_VOCAB)
    elif kind == "wordpiece":
        check_bpe_vocab_size(vocab_size, kind, MIN_WORDPIECE_VOCAB)
    elif is_sentencepiece(kind) and vocab_size < MIN_SPM_VOCAB:
        raise ConfigError(
            f"vocab_size = {vocab_size} is too small for a {kind} tokenizer: it needs at least "
            f"{MIN_SPM_VOCAB} (4 specials + 256 byte-fallback pieces + characters); "
            "typical values are 8000-64000"
        )


# why a trained subword vocabulary can come out smaller than asked
_SHORTFALL = {
    "bpe": "the text has no more pairs seen twice",
    "unigram": "the text has no more pieces worth keeping",
    "wordpiece": "the text has no more pairs to merge",
    "sentencepiece": "the text has no more pieces worth keeping (a small corpus gets a "
    "smaller vocabulary, not an error)",
}


def vocab_report(kind: str, asked: int, got: int) -> dict[str, int | str | None]:
    """What `vocab_size` was asked of a `kind` tokenizer and what it got, with a note when they
    differ: `{"vocab_size": got, "vocab_size_requested": asked or None, "vocab_size_note"}`.
    `kind` not in `TOKENIZER_KINDS` means a saved tokenizer used as is."""
    if kind in ("char", "byte"):
        rule = "one per distinct character of the training text" if kind == "char" else "256 bytes"
        note = f"{kind}: the vocabulary is {rule} plus specials; --vocab-size is not used"
        return {"vocab_size": got, "vocab_size_requested": None, "vocab_size_note": note}
    if kind not in TOKENIZER_KINDS:
        note = "a saved tokenizer, used as is; --vocab-size is not used"
        return {"vocab_size": got, "vocab_size_requested": None, "vocab_size_note": note}
    note = None
    if got < asked:
        note = f"asked {asked:,}, got {got:,}: " + _SHORTFALL["sentencepiece" if is_sentencepiece(kind) else kind]  # fmt: skip
    elif got > asked:
        note = f"asked {asked:,}, got {got:,}: special tokens added on top"
    return {"vocab_size": got, "vocab_size_requested": asked, "vocab_size_note": note}


def train_bytes_for(kind: str, max_bytes: int | None) -> int | None:
    """The text cap for training `kind`: SentencePiece gets at most `SPM_TRAIN_BYTES`."""
    if is_sentencepiece(kind) and max_bytes == DEFAULT_TRAIN_BYTES:
        return SPM_TRAIN_BYTES
    return max_bytes


def cap_bytes(texts: Iterable[str], max_bytes: int | None) -> Iterator[str]:
    """Yield texts until `max_bytes` of UTF-8 have passed; the last one is cut to fit."""
    budget = max_bytes
    for text in texts:
        if budget is None:
            yield text
            continue
        data = text.encode("utf-8")
        if len(data) >= budget:
            # Cut at the byte budget; "ignore" drops a character split by the cut.
            yield data[:budget].decode("utf-8", errors="ignore")
            return
        budget -= len(data)
        yield text


def train_tokenizer(
    kind: str,
    texts: Iterable[str],
    vocab_size: int,
    *,
    max_bytes: int | None = DEFAULT_TRAIN_BYTES,
    show_progress: bool = False,
    threads: int = 1,
) -> Tokenizer:
    """Train a `kind` tokenizer (one of `TOKENIZER_KINDS`) on at most `max_bytes` of `texts`.

    `vocab_size` is the target for the subword kinds; char and byte vocabularies follow from
    the data / the 256 bytes and ignore it. `show_progress` lets the HF trainers draw their
    bars; `threads` sizes SentencePiece's trainer and encoder.
    """
    check_vocab_size(kind, vocab_size)
    capped = cap_bytes(texts, train_bytes_for(kind, max_bytes))
    if kind == "bpe":
        return train_bpe(capped, vocab_size, show_progress=show_progress)
    if kind == "unigram":
        return train_unigram(capped, vocab_size, show_progress=show_progress)
    if kind == "wordpiece":
        return train_wordpiece(capped, vocab_size, show_progress=show_progress)
    if is_sentencepiece(kind):
        return train_sentencepiece(capped, vocab_size, _SPM_KINDS[kind], threads=threads)
    if kind == "char":
        return CharTokenizer.train(cap_bytes(texts, max_bytes))
    if kind == "byte":
        return ByteTokenizer()
    raise ConfigError(
        f"tokenizer kind {kind!r} is not known; choose one of {', '.join(TOKENIZER_KINDS)} "
        "or give the path of a saved tokenizer directory / tokenizer.json"
    )
