"""Loading saved tokenizers and fingerprinting them.

`load_tokenizer(path)` accepts an llmtrain tokenizer directory (`llmtrain_tokenizer.json` +
backend files), a directory holding only a Hugging Face `tokenizer.json` or one sentencepiece
`.model`, or such a file itself.
`tokenizer_sha256(directory)` hashes every file so a manifest can pin the exact tokenizer.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from llmtrain.errors import DataError
from llmtrain.tokenizer.base import META_FILE, Tokenizer
from llmtrain.tokenizer.bpe import BACKEND_FILE, BPETokenizer
from llmtrain.tokenizer.byte import ByteTokenizer
from llmtrain.tokenizer.char import CharTokenizer
from llmtrain.tokenizer.spm import MODEL_FILE, SentencePieceTokenizer

HF_KINDS = ("bpe", "unigram", "wordpiece")


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"tokenizer metadata {path} is unreadable: {e}") from None
    if not isinstance(meta, dict) or "type" not in meta:
        raise DataError(f"tokenizer metadata {path} has no 'type' field")
    return meta


def _from_meta(directory: Path, meta: dict) -> Tokenizer:
    kind = meta["type"]
    if kind == "byte":
        return ByteTokenizer()
    if kind == "char":
        if not isinstance(meta.get("chars"), list):
            raise DataError(f"char tokenizer {directory / META_FILE} has no 'chars' list")
        return CharTokenizer(meta["chars"])
    if kind in HF_KINDS or kind == "sentencepiece":
        default = MODEL_FILE if kind == "sentencepiece" else BACKEND_FILE
        backend = directory / meta.get("backend_file", default)
        if not backend.is_file():
            raise DataError(
                f"{kind} tokenizer {directory} is missing its backend file {backend.name}"
            )
        if kind == "sentencepiece":
            tok = SentencePieceTokenizer.from_file(backend)
        else:
            tok = BPETokenizer.from_file(backend)
            tok.kind = kind
        for role in ("pad_id", "unk_id", "bos_id", "eos_id"):
            if role in meta:
                setattr(tok, role, int(meta[role]))
        return tok
    raise DataError(
        f"tokenizer {directory} has unknown type {kind!r}; expected one of "
        f"{', '.join(HF_KINDS)}, sentencepiece, char or byte"
    )


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a tokenizer from a directory written by `Tokenizer.save`, or a HF tokenizer.json."""
    p = Path(path)
    if p.is_dir():
        if (p / META_FILE).is_file():
            return _from_meta(p, _read_meta(p / META_FILE))
        if (p / BACKEND_FILE).is_file():
            return BPETokenizer.from_file(p / BACKEND_FILE)
        models = sorted(p.glob("*.model"))
        if len(models) == 1:
            return SentencePieceTokenizer.from_file(models[0])
        raise DataError(
            f"no tokenizer in {p}: expected {META_FILE} (written by llmtrain), {BACKEND_FILE} "
            "(a Hugging Face tokenizer) or exactly one sentencepiece .model file"
        )
    if p.is_file():
        if p.name == META_FILE:
            return _from_meta(p.parent, _read_meta(p))
        if p.suffix == ".model":
            return SentencePieceTokenizer.from_file(p)
        return BPETokenizer.from_file(p)
    raise DataError(f"tokenizer path not found: {p}")


def tokenizer_sha256(directory: str | Path) -> str:
    """sha256 over the sorted relative paths and bytes of every file in a tokenizer directory."""
    root = Path(directory)
    if not root.is_dir():
        raise DataError(f"tokenizer directory not found: {root}")
    h = hashlib.sha256()
    for f in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(f.relative_to(root).as_posix().encode("utf-8") + b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()
