"""Tokenizers behind one protocol: byte-level BPE, Unigram and WordPiece (HF `tokenizers`),
SentencePiece BPE / Unigram, char and byte.

Entry points: `train_tokenizer(kind, texts, vocab_size)`, `load_tokenizer(path)`,
`tokenizer_sha256(directory)`. Special tokens PAD/UNK/BOS/EOS are ids 0..3 (see `base`).
"""

from llmtrain.tokenizer.base import (
    BOS,
    BOS_ID,
    EOS,
    EOS_ID,
    META_FILE,
    PAD,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK,
    UNK_ID,
    Tokenizer,
)
from llmtrain.tokenizer.bpe import MIN_BPE_VOCAB, BPETokenizer
from llmtrain.tokenizer.byte import ByteTokenizer
from llmtrain.tokenizer.char import CharTokenizer
from llmtrain.tokenizer.io import load_tokenizer, tokenizer_sha256
from llmtrain.tokenizer.spm import SentencePieceTokenizer
from llmtrain.tokenizer.train import DEFAULT_TRAIN_BYTES, TOKENIZER_KINDS, train_tokenizer

__all__ = [
    "BOS",
    "BOS_ID",
    "DEFAULT_TRAIN_BYTES",
    "EOS",
    "EOS_ID",
    "META_FILE",
    "MIN_BPE_VOCAB",
    "PAD",
    "PAD_ID",
    "SPECIAL_TOKENS",
    "TOKENIZER_KINDS",
    "UNK",
    "UNK_ID",
    "BPETokenizer",
    "ByteTokenizer",
    "CharTokenizer",
    "SentencePieceTokenizer",
    "Tokenizer",
    "load_tokenizer",
    "tokenizer_sha256",
    "train_tokenizer",
]
