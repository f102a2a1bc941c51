"""`SentencePieceTokenizer`: Google's `sentencepiece` (BPE or Unigram) behind the protocol.

Training feeds lines (SentencePiece learns per "sentence"; a newline then encodes as its byte
piece) with identity normalisation, no dummy prefix, whitespace kept and byte fallback, so
`decode(encode(x)) == x` for any text, Chinese and emoji included. The specials are pinned to
ids 0..3 with our names. SentencePiece keeps every training sentence in memory (about 10x the
text in RAM, measured), so training reads at most `SPM_TRAIN_BYTES` (64 MiB) unless told.
`SentencePieceTokenizer.from_file` loads a foreign `.model`, finding its specials.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from llmtrain.errors import ConfigError, DataError
from llmtrain.tokenizer.base import BOS, EOS, META_FILE, PAD, UNK
from llmtrain.utils.io import atomic_write_json

MODEL_FILE = "sentencepiece.model"
SPM_MODEL_TYPES = ("bpe", "unigram")
SPM_TRAIN_BYTES = 64 * 2**20
MAX_SENTENCE_BYTES = 8192  # longer lines are cut: SentencePiece skips over-long sentences
# ids 0..3 + 256 byte-fallback pieces + a few characters: below this training cannot succeed
MIN_SPM_VOCAB = 4 + 256 + 16
_TOO_FEW = re.compile(r"smaller than required_chars\. (\d+) vs (\d+)")


def _import_spm():  # optional heavy import, only when a sentencepiece tokenizer is used
    import sentencepiece

    return sentencepiece


class SentencePieceTokenizer:
    """A `sentencepiece.SentencePieceProcessor` behind the llmtrain `Tokenizer` protocol."""

    kind = "sentencepiece"
    # whitespace ends every piece (split_by_whitespace) and a piece's leading whitespace
    # becomes the dummy prefix "▁" it would have had: line and space cuts keep the ids
    # (tests/unit/data/test_pack.py); punctuation can sit inside a piece, so no cut there
    safe_cuts = ("line", "space")

    def __init__(self, model_proto: bytes, threads: int = 0) -> None:
        spm = _import_spm()
        self.model_proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.vocab_size: int = self.sp.get_piece_size()
        self.model_type = _model_type(model_proto)
        self.threads = threads  # encode_batch threads; 0 = SentencePiece's default (all)
        ids = {
            "pad_id": self.sp.pad_id(),
            "unk_id": self.sp.unk_id(),
            "bos_id": self.sp.bos_id(),
            "eos_id": self.sp.eos_id(),
        }
        if ids["eos_id"] < 0:
            raise DataError(
                "the sentencepiece model has no end-of-text piece (eos_id = -1); documents need "
                "one as separator: retrain it with --eos_id, or let llmtrain train one"
            )
        for role, i in ids.items():
            setattr(self, role, i if i >= 0 else ids["eos_id"])

    @classmethod
    def from_file(cls, path: str | Path) -> SentencePieceTokenizer:
        try:
            proto = Path(path).read_bytes()
            return cls(proto)
        except (OSError, RuntimeError) as e:
            raise DataError(f"cannot load sentencepiece model {path}: {e}") from None

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Encode many texts on `threads` C++ threads (the GIL is released meanwhile)."""
        return self.sp.encode(list(texts), num_threads=self.threads or -1)

    def decode(self, ids: Iterable[int]) -> str:
        return self.sp.decode([int(i) for i in ids])

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MODEL_FILE).write_bytes(self.model_proto)
        meta = {
            "type": self.kind,
            "model_type": self.model_type,
            "vocab_size": self.vocab_size,
            "backend_file": MODEL_FILE,
            "pad_id": self.pad_id,
            "unk_id": self.unk_id,
            "bos_id": self.bos_id,
            "eos_id": self.eos_id,
        }
        atomic_write_json(directory / META_FILE, meta)


def _round_up(n: int) -> int:
    return -(-2 * n // 1000) * 1000


def _model_type(model_proto: bytes) -> str:
    """ "bpe" | "unigram" | "word" | "char" from the serialized ModelProto."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    m = pb.ModelProto()
    m.ParseFromString(model_proto)
    return pb.TrainerSpec.ModelType.Name(m.trainer_spec.model_type).lower()


def training_lines(texts: Iterable[str]) -> Iterator[str]:
    """Non-blank lines of `texts`, each cut to at most `MAX_SENTENCE_BYTES` of UTF-8."""
    for text in texts:
        for line in text.split("\n"):
            if not line.strip():
                continue
            data = line.encode("utf-8")
            for lo in range(0, len(data), MAX_SENTENCE_BYTES):
                yield data[lo : lo + MAX_SENTENCE_BYTES].decode("utf-8", errors="ignore")


def train_sentencepiece(
    texts: Iterable[str], vocab_size: int, model_type: str = "unigram", *, threads: int = 1
) -> SentencePieceTokenizer:
    """Train a SentencePiece `model_type` ("bpe" | "unigram") model on the lines of `texts`
    (single-threaded, for a deterministic model); `threads` is kept for encoding."""
    if model_type not in SPM_MODEL_TYPES:
        raise ConfigError(
            f"sentencepiece model type {model_type!r} is not supported; choose one of "
            f"{', '.join(SPM_MODEL_TYPES)}"
        )
    if vocab_size < MIN_SPM_VOCAB:
        raise ConfigError(
            f"vocab_size = {vocab_size} is too small for a sentencepiece tokenizer: it needs at "
            f"least {MIN_SPM_VOCAB} (4 specials + 256 byte-fallback pieces + characters); "
            "typical values are 8000-64000"
        )
    spm = _import_spm()
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=training_lines(texts),
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            pad_id=0, unk_id=1, bos_id=2, eos_id=3,
            pad_piece=PAD, unk_piece=UNK, bos_piece=BOS, eos_piece=EOS,
            byte_fallback=True,
            character_coverage=0.9995,  # rare characters fall back to bytes
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            add_dummy_prefix=False,
            allow_whitespace_only_pieces=True,
            split_digits=True,
            max_sentence_length=MAX_SENTENCE_BYTES,
            hard_vocab_limit=False,  # a small corpus gets a smaller vocabulary, not an error
            train_extremely_large_corpus=False,
            # one thread: with more, pieces of equal score come out in a varying order, and
            # --workers must not change the output (the text is capped, so it stays quick)
            num_threads=1,
            minloglevel=2,
        )  # fmt: skip
    except RuntimeError as e:
        m = _TOO_FEW.search(str(e))
        if m:
            raise ConfigError(
                f"vocab_size = {vocab_size} is smaller than the {m.group(2)} characters and "
                f"specials this text needs (Chinese text alone has thousands of characters); "
                f"raise --vocab-size above {m.group(2)} (e.g. {_round_up(int(m.group(2)))})"
            ) from None
        raise DataError(f"sentencepiece training failed: {e}") from None
    return SentencePieceTokenizer(_without_thread_count(model.getvalue()), threads=threads)


def _without_thread_count(model_proto: bytes) -> bytes:
    """The model with `trainer_spec.num_threads` reset, so its bytes (and sha256) do not
    depend on --workers; the pieces and scores do not either."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    m = pb.ModelProto()
    m.ParseFromString(model_proto)
    m.trainer_spec.num_threads = 1
    return m.SerializeToString()
