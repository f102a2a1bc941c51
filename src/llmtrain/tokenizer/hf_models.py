"""Unigram and WordPiece on the Hugging Face `tokenizers` library; neither ever needs UNK.

Unigram spells what its pieces cannot with 256 byte pieces (like Llama's SentencePiece); a
literal "▁" in the text decodes as a space, as in SentencePiece. WordPiece reads text through
the GPT-2 byte-level pre-tokenizer, so every string (Chinese, emoji, control characters) has a
spelling and `decode(encode(x)) == x`. WordPiece also isolates each
CJK ideograph (as BERT does) and marks word-inner pieces with a private-use character instead
of "##", so a literal "##" in the text survives decoding; every byte exists both as a word
start and as a continuation, so only a "word" longer than `WORDPIECE_MAX_WORD` bytes (a long
URL, an unspaced non-CJK run) becomes UNK. The wrapper is `BPETokenizer` with its `kind` set.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from tokenizers import Regex, decoders, models, pre_tokenizers, trainers
from tokenizers import Tokenizer as HFTokenizer

from llmtrain.tokenizer.base import SPECIAL_TOKENS, UNK
from llmtrain.tokenizer.bpe import BPETokenizer, check_bpe_vocab_size

# U+E000 (private use) never occurs after byte-level mapping, so it cannot clash with text.
WORDPIECE_PREFIX = "\ue000"
WORDPIECE_MAX_WORD = 200  # byte characters; WordPiece's greedy match is quadratic in it
_CJK = Regex(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
# every byte as a word start and as a continuation, plus the specials
MIN_WORDPIECE_VOCAB = 2 * 256 + len(SPECIAL_TOKENS)
MIN_UNIGRAM_VOCAB = 256 + len(SPECIAL_TOKENS) + 40  # bytes, specials, a few characters
_ROLES = ("pad_id", "unk_id", "bos_id", "eos_id")


def _byte_level() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)


def _wrap(backend: HFTokenizer, kind: str) -> BPETokenizer:
    ids = [backend.token_to_id(t) for t in SPECIAL_TOKENS]
    assert ids == [0, 1, 2, 3], f"special tokens landed at {ids}"
    return BPETokenizer(backend, dict(zip(_ROLES, ids)), kind)


def train_unigram(
    texts: Iterator[str] | Iterable[str], vocab_size: int, *, show_progress: bool = False
) -> BPETokenizer:
    """A Unigram language-model tokenizer (SentencePiece's algorithm) with byte fallback.

    Spaces become "▁" (Metaspace, no dummy prefix) and each newline is its own piece; the
    256 `<0xNN>` byte pieces spell whatever the learned pieces cannot, so nothing is UNK.
    (HF's Unigram trainer learns almost no words over byte-level characters, hence Metaspace.)
    """
    check_bpe_vocab_size(vocab_size, "unigram", MIN_UNIGRAM_VOCAB)
    pre = pre_tokenizers.Sequence(
        [pre_tokenizers.Split("\n", "isolated"), pre_tokenizers.Metaspace(prepend_scheme="never")]
    )
    seed = HFTokenizer(models.Unigram())
    seed.pre_tokenizer = pre
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size - 256,  # room for the byte pieces
        special_tokens=list(SPECIAL_TOKENS),
        unk_token=UNK,
        show_progress=show_progress,
    )
    seed.train_from_iterator(iter(texts), trainer=trainer)
    vocab = [tuple(v) for v in json.loads(seed.to_str())["model"]["vocab"]]
    have = {piece for piece, _ in vocab}
    floor = min(score for _, score in vocab) - 1.0  # bytes only where no piece fits
    vocab += [(b, floor) for b in (f"<0x{i:02X}>" for i in range(256)) if b not in have]
    backend = HFTokenizer(models.Unigram(vocab, unk_id=1, byte_fallback=True))
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    backend.pre_tokenizer = pre
    backend.decoder = decoders.Sequence(
        [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    return _wrap(backend, "unigram")


def _complete_alphabet(vocab: dict[str, int], vocab_size: int) -> dict[str, int]:
    """`vocab` with every byte character as word start and as continuation, at most
    `vocab_size` entries: the latest-learned pieces make room for missing ones."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    required = sorted(alphabet) + [WORDPIECE_PREFIX + c for c in sorted(alphabet)]
    missing = [t for t in required if t not in vocab]
    kept = sorted(vocab, key=vocab.__getitem__)
    protected = set(required) | set(SPECIAL_TOKENS)
    room = vocab_size - len(missing)
    while len(kept) > room and any(t not in protected for t in kept):
        # drop the latest learned piece that is not a special or an alphabet entry
        for i in range(len(kept) - 1, -1, -1):
            if kept[i] not in protected:
                del kept[i]
                break
    return {t: i for i, t in enumerate(kept + missing)}


def train_wordpiece(
    texts: Iterator[str] | Iterable[str], vocab_size: int, *, show_progress: bool = False
) -> BPETokenizer:
    """A byte-level WordPiece tokenizer (BERT's model) from `texts`; see the module notes."""
    check_bpe_vocab_size(vocab_size, "wordpiece", MIN_WORDPIECE_VOCAB)
    pre = pre_tokenizers.Sequence([pre_tokenizers.Split(_CJK, "isolated"), _byte_level()])
    backend = HFTokenizer(
        models.WordPiece(unk_token=UNK, continuing_subword_prefix=WORDPIECE_PREFIX)
    )
    backend.pre_tokenizer = pre
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        continuing_subword_prefix=WORDPIECE_PREFIX,
        show_progress=show_progress,
    )
    backend.train_from_iterator(iter(texts), trainer=trainer)
    vocab = _complete_alphabet(backend.get_vocab(with_added_tokens=False), vocab_size)
    final = HFTokenizer(
        models.WordPiece(
            vocab,
            unk_token=UNK,
            continuing_subword_prefix=WORDPIECE_PREFIX,
            max_input_chars_per_word=WORDPIECE_MAX_WORD,
        )
    )
    final.add_special_tokens(list(SPECIAL_TOKENS))
    final.pre_tokenizer = pre
    final.decoder = decoders.Sequence(
        [decoders.Replace(WORDPIECE_PREFIX, ""), decoders.ByteLevel()]
    )
    return _wrap(final, "wordpiece")
