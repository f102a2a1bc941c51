"""Word boundaries of token ids, for whole-word masking: `WordBoundaries(tok, segmenter)`.

Every id gets its UTF-8 bytes (`token_bytes`, read from the tokenizer's own decoding rules:
byte-level, "▁" spaces, `<0xNN>` byte pieces, WordPiece prefixes). An id starts a word when
its text starts with whitespace, punctuation or a Han character, or is a special; it
continues one when it starts with a letter/digit or inside a character that a byte-level
merge cut (`word_start_table`). Chinese has no spaces, so by that table each Han character
is its own word; with `segmenter="jieba"` each run of Han characters in a window is cut
into words by jieba (as Chinese BERT-wwm, Cui et al. 2019, cut with a segmenter) and only a
token that begins a jieba word starts one. Segmentation is per window, at batch time, on the
window's own bytes: it needs no extra data on disk, fits any packing, and is a pure
function of the ids (jieba's dictionary and HMM are deterministic), so resume stays exact.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import numpy as np

from llmtrain.errors import ConfigError
from llmtrain.tokenizer.hf_form import byte_to_unicode

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
_HAN_RUN = re.compile(f"[{_HAN}]+")
_HAN_CHAR = re.compile(f"[{_HAN}]")
_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")
SEGMENTERS = ("jieba",)


def is_han(ch: str) -> bool:
    return bool(_HAN_CHAR.match(ch))


def token_bytes(tok: Any) -> list[bytes]:
    """The UTF-8 bytes each id spells (b"" for specials and control pieces)."""
    kind = tok.kind
    if hasattr(tok, "backend"):
        out = _hf_token_bytes(tok.backend)
    elif kind == "sentencepiece":
        sp = tok.sp
        out = [_spm_piece_bytes(sp, i) for i in range(tok.vocab_size)]
    elif kind == "char":
        out = [b""] * 4 + [c.encode("utf-8", "surrogatepass") for c in tok.chars]
    elif kind == "byte":
        out = [b""] * 4 + [bytes([b]) for b in range(256)]
    else:
        raise ConfigError(f"whole-word masking does not know the {kind!r} tokenizer's pieces")
    for i in (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id):
        out[i] = b""
    return out


def _spm_piece_bytes(sp: Any, i: int) -> bytes:
    if sp.is_control(i) or sp.is_unknown(i):
        return b""
    piece = sp.id_to_piece(i)
    if sp.is_byte(i):
        return bytes([int(_BYTE_PIECE.fullmatch(piece).group(1), 16)])
    return piece.replace("\u2581", " ").encode("utf-8")


def _hf_token_bytes(backend: Any) -> list[bytes]:
    """Each token string run through the backend's decoder steps (as JSON)."""
    dec = json.loads(backend.to_str()).get("decoder") or {}
    steps = dec.get("decoders", []) if dec.get("type") == "Sequence" else [dec]
    out = [b""] * backend.get_vocab_size(with_added_tokens=True)
    special = {i for i, t in backend.get_added_tokens_decoder().items() if t.special}
    for text, i in backend.get_vocab(with_added_tokens=True).items():
        out[i] = b"" if i in special else _decode_piece(text, steps)
    return out


@lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    return {c: b for b, c in byte_to_unicode().items()}


def _decode_piece(s: str, steps: list[dict]) -> bytes:
    inverse = _unicode_to_byte()
    for st in steps:
        kind = st.get("type")
        if kind == "Replace" and "String" in st.get("pattern", {}):
            s = s.replace(st["pattern"]["String"], st["content"])
        elif kind == "Metaspace":
            s = s.replace(st.get("replacement", "\u2581"), " ")
        elif kind == "WordPiece":
            prefix = st.get("prefix", "##")
            if s.startswith(prefix):
                s = s[len(prefix) :]
            elif s and s[0].isalnum() and not is_han(s[0]):
                s = " " + s  # a WordPiece word start: the space its decoder puts back
        elif kind == "ByteFallback" and _BYTE_PIECE.fullmatch(s):
            return bytes([int(s[3:5], 16)])
        elif kind == "ByteLevel" and all(c in inverse for c in s):
            return bytes(inverse[c] for c in s)
    return s.encode("utf-8")


def _starts_word(piece: bytes) -> bool:
    if not piece:
        return True  # specials separate documents
    if piece[0] & 0xC0 == 0x80:
        return False  # inside a character a byte-level merge cut: continues its word
    ch = piece.decode("utf-8", "ignore")[:1]
    if not ch:
        return True  # an incomplete multi-byte character (e.g. a cut Han character)
    return ch.isspace() or not ch.isalnum() or is_han(ch)


def word_start_table(tok: Any) -> np.ndarray:
    """Bool (V,): id starts a word (see the module notes)."""
    return np.array([_starts_word(p) for p in token_bytes(tok)], dtype=bool)


class WordBoundaries:
    """`starts(x)`: bool (B, T) word starts of ids x (B, T); with a segmenter, Han runs are
    cut into its words. `table` is the per-id rule alone."""

    def __init__(self, tok: Any, segmenter: str | None = None) -> None:
        self.pieces = token_bytes(tok)
        self.table = np.array([_starts_word(p) for p in self.pieces], dtype=bool)
        self.empty = np.array([not p for p in self.pieces])
        # may hold (part of) a Han character: a UTF-8 lead byte of U+3000 and above
        self.may_han = np.array([any(b >= 0xE3 for b in p) for p in self.pieces])
        self.cut = None
        if segmenter is not None:
            if segmenter not in SEGMENTERS:
                raise ConfigError(
                    f"word segmenter {segmenter!r} is not known; choose one of "
                    f"{', '.join(SEGMENTERS)}"
                )
            self.cut = _jieba_cut()

    def starts(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        out = self.table[x]  # (B, T)
        if self.cut is not None:
            for b in np.flatnonzero(self.may_han[x].any(axis=1)):
                out[b] = self._segment_row(x[b], out[b])
        return out

    def _segment_row(self, ids: np.ndarray, starts: np.ndarray) -> np.ndarray:
        # specials spell "\0": a Han run never spans two documents
        parts = [self.pieces[i] or b"\0" for i in ids.tolist()]
        lens = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
        offsets = np.cumsum(lens) - lens  # (T,) first byte of each token
        data = b"".join(parts)
        text = data.decode("utf-8", "surrogateescape")  # one char per undecodable byte
        mark = np.full(len(data), -1, dtype=np.int8)  # -1 outside Han runs, 0 inside, 1 starts
        char_pos = byte_pos = 0
        for m in _HAN_RUN.finditer(text):
            byte_pos += len(text[char_pos : m.start()].encode("utf-8", "surrogateescape"))
            char_pos = m.start()
            at = byte_pos
            for n in self.cut(m.group()):  # bytes of each word
                mark[at] = 1
                mark[at + 1 : at + n] = 0
                at += n
        m = mark[offsets]  # (T,)
        m[self.empty[ids]] = -1  # specials keep their rule (always a start)
        return np.where(m < 0, starts, m == 1)


@lru_cache(maxsize=1)
def _jieba_cut():
    """`run -> tuple of word byte lengths`, memoised, over a private jieba dictionary
    (loaded once per process: about a second)."""
    try:
        import jieba
    except ImportError:
        raise ConfigError(
            "objective.whole_word='jieba' needs the `jieba` package: pip install 'llmtrain[zh]'"
        ) from None
    import logging

    jieba.setLogLevel(logging.WARNING)  # it logs the dictionary build at DEBUG otherwise
    tk = jieba.Tokenizer()
    tk.initialize()

    @lru_cache(maxsize=1 << 16)
    def cut(run: str) -> tuple[int, ...]:
        return tuple(len(w.encode("utf-8")) for w in tk.cut(run, HMM=True))

    return cut
