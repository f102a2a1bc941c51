"""`train_tokenizer(kind, texts, vocab_size)`: one entry point over the three backends.

Training streams `texts` and stops after `max_bytes` of UTF-8 (default 256 MiB): BPE merge
statistics converge long before that, and the bound keeps memory flat on any corpus size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from llmtrain.errors import ConfigError
from llmtrain.tokenizer.base import Tokenizer
from llmtrain.tokenizer.bpe import train_bpe
from llmtrain.tokenizer.byte import ByteTokenizer
from llmtrain.tokenizer.char import CharTokenizer

TOKENIZER_KINDS = ("bpe", "char", "byte")
DEFAULT_TRAIN_BYTES = 256 * 2**20


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
) -> Tokenizer:
    """Train a `kind` tokenizer ("bpe" | "char" | "byte") on at most `max_bytes` of `texts`.

    `vocab_size` is the target for BPE; char and byte vocabularies follow from the data / the
    256 bytes and ignore it. `show_progress` lets the BPE trainer draw its own bars.
    """
    if kind == "bpe":
        return train_bpe(cap_bytes(texts, max_bytes), vocab_size, show_progress=show_progress)
    if kind == "char":
        return CharTokenizer.train(cap_bytes(texts, max_bytes))
    if kind == "byte":
        return ByteTokenizer()
    raise ConfigError(
        f"tokenizer kind {kind!r} is not known; choose one of {', '.join(TOKENIZER_KINDS)} "
        "or give the path of a saved tokenizer directory / tokenizer.json"
    )
