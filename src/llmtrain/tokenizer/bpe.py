"""`BPETokenizer`: byte-level BPE on the Hugging Face `tokenizers` library (GPT-2 style).

`train_bpe(texts, vocab_size)` learns merges from a text iterator with the specials pinned to
ids 0..3; any text, Chinese and emoji included, round-trips because every byte has a token.
`BPETokenizer.from_file` also wraps a foreign `tokenizer.json`, finding its special tokens.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from llmtrain.errors import ConfigError, DataError
from llmtrain.tokenizer.base import CUT_KINDS, META_FILE, SPECIAL_TOKENS
from llmtrain.utils.io import atomic_write_json

BACKEND_FILE = "tokenizer.json"
# 256 byte tokens + 4 specials: below this the vocabulary cannot even hold the alphabet.
MIN_BPE_VOCAB = 256 + len(SPECIAL_TOKENS)
MAX_BPE_VOCAB = 1 << 22

# Names foreign tokenizers use for each special role, first match wins.
_SPECIAL_NAMES = {
    "pad_id": ("<|pad|>", "<pad>", "[PAD]", "<|padding|>"),
    "unk_id": ("<|unk|>", "<unk>", "[UNK]"),
    "bos_id": ("<|bos|>", "<s>", "<|begin_of_text|>", "<|startoftext|>", "[CLS]", "<bos>"),
    "eos_id": ("<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>", "[SEP]", "<|im_end|>"),
}


class BPETokenizer:
    """A `tokenizers.Tokenizer` behind the llmtrain `Tokenizer` protocol.

    It wraps any `tokenizers` model: `kind` is "bpe", "unigram" or "wordpiece" (see
    `hf_models` for the latter two), read from the model itself for a foreign file.
    """

    kind = "bpe"

    def __init__(
        self, backend: HFTokenizer, specials: dict[str, int], kind: str | None = None
    ) -> None:
        self.backend = backend
        self.kind = kind or _model_kind(backend)
        self.vocab_size: int = backend.get_vocab_size(with_added_tokens=True)
        self.pad_id = specials["pad_id"]
        self.unk_id = specials["unk_id"]
        self.bos_id = specials["bos_id"]
        self.eos_id = specials["eos_id"]
        self.safe_cuts = _safe_cuts(backend)

    @classmethod
    def from_file(cls, path: str | Path) -> BPETokenizer:
        """Wrap a `tokenizer.json`; specials it lacks fall back to its end-of-text token."""
        try:
            backend = HFTokenizer.from_file(str(path))
        except Exception as e:  # the Rust side raises plain Exception subclasses
            raise DataError(f"cannot load tokenizer file {path}: {e}") from None
        found = {role: _find_token(backend, names) for role, names in _SPECIAL_NAMES.items()}
        if found["eos_id"] is None:
            raise DataError(
                f"tokenizer {path} has no end-of-text token (looked for "
                f"{', '.join(_SPECIAL_NAMES['eos_id'])}); documents need one as separator"
            )
        specials = {role: (i if i is not None else found["eos_id"]) for role, i in found.items()}
        return cls(backend, specials)

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Encode many texts on all cores (Rust threads; the GIL is released meanwhile)."""
        fast = getattr(self.backend, "encode_batch_fast", self.backend.encode_batch)
        return [e.ids for e in fast(list(texts), add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=True)

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.backend.save(str(directory / BACKEND_FILE))
        meta = {
            "type": self.kind,
            "vocab_size": self.vocab_size,
            "backend_file": BACKEND_FILE,
            "pad_id": self.pad_id,
            "unk_id": self.unk_id,
            "bos_id": self.bos_id,
            "eos_id": self.eos_id,
        }
        atomic_write_json(directory / META_FILE, meta)


ALL_CUTS = frozenset(CUT_KINDS)


def _safe_cuts(backend: HFTokenizer) -> tuple[str, ...]:
    """`Tokenizer.safe_cuts` from the pipeline itself: a cut is safe when some pre-tokenizer
    step always ends a pre-token there and no step adds text at a piece's edge or matches
    across it. A normalizer (it may look across a cut) or an unknown step: encode whole."""
    if backend.normalizer is not None or backend.pre_tokenizer is None:
        return ()
    state = json.loads(backend.pre_tokenizer.__getstate__())
    steps = state["pretokenizers"] if state["type"] == "Sequence" else [state]
    created, kept = set(), set(ALL_CUTS)
    for step in steps:
        makes, keeps = _step_cuts(step)
        created |= makes
        kept &= keeps
    return tuple(c for c in CUT_KINDS if c in created & kept)


def _step_cuts(step: dict) -> tuple[set[str], set[str]]:
    """(the cuts this pre-tokenizer step always ends a pre-token at, the cuts it keeps)."""
    kind = step["type"]
    if kind == "ByteLevel":  # GPT-2's regex: letters / digits / punctuation / spaces runs
        if step["add_prefix_space"]:
            return set(), set()
        return (set(ALL_CUTS) if step.get("use_regex") else set()), set(ALL_CUTS)
    if kind == "Metaspace":  # spaces become "▁", each starting a word; no ▁ prepended
        if step.get("prepend_scheme") != "never":
            return set(), set()
        return ({"space"} if step.get("split", True) else set()), set(ALL_CUTS)
    if kind == "Split" and step.get("behavior") == "Isolated" and not step.get("invert"):
        pattern = step["pattern"]
        if pattern.get("String") == "\n":  # each newline its own pre-token
            return {"line"}, set(ALL_CUTS)
        regex = pattern.get("Regex", "")
        if regex.startswith("[") and regex.endswith("]") and "]" not in regex[1:-1]:
            return set(), set(ALL_CUTS)  # one character class: a match spans no cut
        if regex.endswith("\\s+(?!\\S)|\\s+"):  # tiktoken-style (GPT-4, Llama-3, Qwen)
            return {"line", "space"}, {"line", "space"}
    return set(), set()


def _model_kind(backend: HFTokenizer) -> str:
    """ "bpe" | "unigram" | "wordpiece" | "wordlevel" from the backend's model class."""
    return type(backend.model).__name__.lower()


def _find_token(backend: HFTokenizer, names: Sequence[str]) -> int | None:
    for name in names:
        i = backend.token_to_id(name)
        if i is not None:
            return i
    return None


def check_bpe_vocab_size(vocab_size: int, kind: str = "bpe", minimum: int = MIN_BPE_VOCAB) -> None:
    """ConfigError unless `minimum <= vocab_size <= MAX_BPE_VOCAB` (any byte-level kind)."""
    if not minimum <= vocab_size <= MAX_BPE_VOCAB:
        alphabet = "256 bytes" if minimum == MIN_BPE_VOCAB else "the byte alphabet"
        raise ConfigError(
            f"vocab_size = {vocab_size} is out of range for a byte-level {kind} tokenizer: it "
            f"needs at least {minimum} ({alphabet} + 4 special tokens) and at most {MAX_BPE_VOCAB}; "
            "typical values are 8192 for small corpora up to 50000-100000 for large ones "
            "(or use --tokenizer char / byte for a tiny vocabulary)"
        )


def train_bpe(
    texts: Iterator[str] | Iterable[str], vocab_size: int, *, show_progress: bool = False
) -> BPETokenizer:
    """Learn byte-level BPE merges from `texts`, streamed (the iterator is consumed lazily)."""
    check_bpe_vocab_size(vocab_size)
    backend = HFTokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),  # added first: ids 0..3 in this order
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    backend.train_from_iterator(iter(texts), trainer=trainer)
    ids = [backend.token_to_id(t) for t in SPECIAL_TOKENS]
    assert ids == [0, 1, 2, 3], f"special tokens landed at {ids}"
    return BPETokenizer(backend, dict(zip(("pad_id", "unk_id", "bos_id", "eos_id"), ids)), "bpe")
