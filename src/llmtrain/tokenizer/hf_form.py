"""The Hugging Face `tokenizers` form of every llmtrain tokenizer: `hf_backend(tok)`.

BPE, Unigram and WordPiece already are `tokenizers` objects. The others are rebuilt with the
same ids: SentencePiece BPE / Unigram from the model proto (pieces, scores, byte fallback,
its normaliser options), char as a BPE model with no merges over the characters (unknown
characters become UNK, as ours), byte as a byte-level BPE with no merges (id = byte + 4).
The four specials are added tokens, so `AutoTokenizer` finds pad/unk/bos/eos by name.
Known gap: a SentencePiece *Unigram* model's lattice in `tokenizers` can match the literal
text of a control or byte piece ("<|endoftext|>", "<0x41>") written in the input, which
sentencepiece spells out; no `tokenizers` option excludes pieces from the lattice.
No `transformers` import: the export layer wraps the result.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer

from llmtrain.errors import ExportError

SPECIAL_ROLES = ("pad_id", "unk_id", "bos_id", "eos_id")


@lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in character for each byte (what ByteLevel pre-tokenises to)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    extra = [b for b in range(256) if b not in keep]
    table = {b: chr(b) for b in keep}
    table.update({b: chr(256 + i) for i, b in enumerate(extra)})
    return table


def hf_backend(tok: Any) -> HFTokenizer:
    """A `tokenizers.Tokenizer` that gives `tok`'s ids; ExportError, naming the kind and the
    fix, for a tokenizer that has no exact `tokenizers` form."""
    kind = getattr(tok, "kind", None)
    if hasattr(tok, "backend"):  # bpe, unigram, wordpiece, foreign tokenizer.json
        return copy.deepcopy(tok.backend)
    if kind == "sentencepiece":
        return _from_sentencepiece(tok)
    if kind == "char":
        return _from_chars(tok)
    if kind == "byte":
        return _from_bytes(tok)
    raise ExportError(
        f"the {kind!r} tokenizer has no Hugging Face `tokenizers` form; retrain with "
        "--tokenizer bpe, unigram, wordpiece, sentencepiece-bpe/-unigram, char or byte, or "
        "pass --no-tokenizer to export the weights only"
    )


def special_names(tok: Any, backend: HFTokenizer) -> dict[str, str]:
    """{role ('pad', 'unk', 'bos', 'eos'): token text} of `tok`'s special ids in `backend`."""
    return {
        role[:-3]: backend.id_to_token(getattr(tok, role))
        for role in SPECIAL_ROLES
        if backend.id_to_token(getattr(tok, role)) is not None
    }


def _with_specials(backend: HFTokenizer, names: list[str]) -> HFTokenizer:
    backend.add_special_tokens(names)  # ids already in the vocabulary keep them
    return backend


def _from_chars(tok: Any) -> HFTokenizer:
    """BPE with no merges: every character its own token, unknown characters UNK (not fused)."""
    from llmtrain.tokenizer.base import SPECIAL_TOKENS

    vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    vocab.update({c: i + len(SPECIAL_TOKENS) for i, c in enumerate(tok.chars)})
    if len(vocab) != tok.vocab_size:
        raise ExportError(
            "the char tokenizer's vocabulary holds a character equal to a special token's "
            "text; it cannot be exported (retrain it, or pass --no-tokenizer)"
        )
    backend = HFTokenizer(models.BPE(vocab, [], unk_token=SPECIAL_TOKENS[tok.unk_id]))
    backend.decoder = decoders.Fuse()
    return _with_specials(backend, list(SPECIAL_TOKENS))


def _from_bytes(tok: Any) -> HFTokenizer:
    """Byte-level BPE with no merges: byte b is the token `byte_to_unicode()[b]`, id b + 4."""
    from llmtrain.tokenizer.base import SPECIAL_TOKENS

    n = len(SPECIAL_TOKENS)
    vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    vocab.update({ch: b + n for b, ch in byte_to_unicode().items()})
    backend = HFTokenizer(models.BPE(vocab, []))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    return _with_specials(backend, list(SPECIAL_TOKENS))


# sentencepiece_model.proto piece types
_NORMAL, _UNKNOWN, _CONTROL, _USER, _UNUSED, _BYTE = 1, 2, 3, 4, 5, 6


def _from_sentencepiece(tok: Any) -> HFTokenizer:
    """SentencePiece's own algorithm over the whole (normalised) text: Unigram's lattice or
    BPE merges by score, with no pre-tokenizer splitting (spm does not split at encode
    time; its pieces already respect whitespace), spaces as "▁", byte fallback."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    m = pb.ModelProto()
    m.ParseFromString(tok.model_proto)
    spec, norm = m.trainer_spec, m.normalizer_spec
    bad = []
    if spec.treat_whitespace_as_suffix:
        bad.append("treat_whitespace_as_suffix=true")
    if not norm.escape_whitespaces:
        bad.append("escape_whitespaces=false")
    if spec.model_type not in (pb.TrainerSpec.UNIGRAM, pb.TrainerSpec.BPE):
        bad.append(f"model_type={pb.TrainerSpec.ModelType.Name(spec.model_type).lower()}")
    if bad:
        raise ExportError(
            "this sentencepiece model has options no `tokenizers` pipeline reproduces ("
            + ", ".join(bad)
            + "); retrain it with llmtrain (--tokenizer sentencepiece-unigram or -bpe), or "
            "pass --no-tokenizer"
        )
    pieces = [(p.piece, p.score, p.type) for p in m.pieces]
    unk = next(i for i, p in enumerate(pieces) if p[2] == _UNKNOWN)
    if spec.model_type == pb.TrainerSpec.UNIGRAM:
        vocab = [(p, s) for p, s, _ in pieces]
        model = models.Unigram(vocab, unk_id=unk, byte_fallback=spec.byte_fallback)
    else:
        model = _spm_bpe(pieces, unk, spec.byte_fallback)
    backend = HFTokenizer(model)
    backend.normalizer = _spm_normalizer(norm)
    backend.decoder = decoders.Sequence(
        [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()]
        + ([decoders.Strip(" ", 1, 0)] if norm.add_dummy_prefix else [])
    )
    backend.add_tokens([p for p, _, t in pieces if t == _USER])  # spm splits these out
    return _with_specials(backend, [p for p, _, t in pieces if t in (_CONTROL, _UNKNOWN)])


def _spm_bpe(pieces: list[tuple[str, float, int]], unk: int, byte_fallback: bool):
    """BPE whose merge ranks follow the pieces' scores: spm merges the adjacent pair whose
    concatenation is the best-scored piece (leftmost on ties); every split of a piece into
    two pieces is a merge, ranked by (the piece's score, the left part's score)."""
    vocab = {p: i for i, (p, _, _) in enumerate(pieces)}
    score = {p: s for p, s, t in pieces if t in (_NORMAL, _USER)}
    merges = []
    for piece, s in score.items():
        for k in range(1, len(piece)):
            left, right = piece[:k], piece[k:]
            if left in score and right in score:
                merges.append((-s, vocab[left], vocab[right], (left, right)))
    merges.sort()
    return models.BPE(
        vocab,
        [m[3] for m in merges],
        unk_token=pieces[unk][0],
        byte_fallback=byte_fallback,
        fuse_unk=True,
    )


def _spm_normalizer(norm: Any) -> normalizers.Normalizer:
    steps = []
    if norm.precompiled_charsmap:  # nmt_nfkc etc.: the rule table spm compiled in
        steps.append(normalizers.Precompiled(norm.precompiled_charsmap))
    if norm.remove_extra_whitespaces:
        steps += [
            normalizers.Strip(left=True, right=True),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    if norm.add_dummy_prefix:
        steps.append(normalizers.Prepend("\u2581"))
    steps.append(normalizers.Replace(" ", "\u2581"))
    return normalizers.Sequence(steps)
