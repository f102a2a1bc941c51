"""The prepared-data format (docs/data_format.md): token shards, document indexes, manifest.

Writing: `ShardWriter` streams documents (ids + EOS) into `SPLIT/shard_XXXXX.bin` with a
`.idx.npy` of document offsets, hashing as it goes. Reading: `read_manifest`, `open_split`
(read-only memmaps) and `verify_shards` (sha256 of every shard against the manifest).
"""

from __future__ import annotations

import hashlib
import json
from array import array
from pathlib import Path
from typing import Any

import numpy as np

from llmtrain.errors import DataError
from llmtrain.utils.io import sha256_file

FORMAT = "llmtrain-shards"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
REPORT_FILE = "report.json"
TOKENIZER_DIR = "tokenizer"
SPLITS = ("train", "val")
_FLUSH_TOKENS = 1 << 20


def shard_dtype(vocab_size: int) -> str:
    """ "uint16" when every id fits in 16 bits (vocab <= 65536), else "uint32"."""
    if vocab_size <= 0:
        raise DataError(f"vocab_size must be positive, got {vocab_size}")
    return "uint16" if vocab_size <= 1 << 16 else "uint32"


class ShardWriter:
    """Appends documents to the shards of one split, starting a new shard past `shard_tokens`.

    A document never straddles two shards. `close()` returns the manifest's shard records.
    """

    def __init__(self, out_dir: Path, split: str, dtype: str, shard_tokens: int, eos_id: int):
        self.out_dir, self.split, self.dtype = Path(out_dir), split, np.dtype(dtype)
        self.shard_tokens, self.eos_id = shard_tokens, eos_id
        self.shards: list[dict[str, Any]] = []
        self._file = None
        (self.out_dir / split).mkdir(parents=True, exist_ok=True)

    def _open(self) -> None:
        name = f"{self.split}/shard_{len(self.shards):05d}"
        self._rel_bin, self._rel_idx = f"{name}.bin", f"{name}.idx.npy"
        self._file = open(self.out_dir / self._rel_bin, "wb")  # noqa: SIM115 (closed in _close)
        self._hash = hashlib.sha256()
        self._offsets = array("Q")
        self._tokens = 0
        self._pending: list[np.ndarray] = []
        self._pending_tokens = 0

    def add(self, ids: np.ndarray | list[int]) -> None:
        """Append one document's ids; EOS is appended here."""
        arr = np.asarray(ids)
        if len(arr) and (arr.min() < 0 or arr.max() >= np.iinfo(self.dtype).max + 1):
            raise DataError(f"token id out of range for shard dtype {self.dtype}")
        if self._file is None:
            self._open()
        self._offsets.append(self._tokens)
        doc = np.empty(len(arr) + 1, dtype=self.dtype)
        doc[:-1] = arr
        doc[-1] = self.eos_id
        self._pending.append(doc)
        self._tokens += len(doc)
        self._pending_tokens += len(doc)
        if self._pending_tokens >= _FLUSH_TOKENS:
            self._flush()
        if self._tokens >= self.shard_tokens:
            self._close()

    def _flush(self) -> None:
        if self._pending:
            data = np.concatenate(self._pending).astype(self.dtype.newbyteorder("<")).tobytes()
            self._file.write(data)
            self._hash.update(data)
            self._pending, self._pending_tokens = [], 0

    def _close(self) -> None:
        self._flush()
        self._file.close()
        self._file = None
        np.save(self.out_dir / self._rel_idx, np.frombuffer(self._offsets, dtype=np.uint64))
        self.shards.append(
            {
                "path": self._rel_bin,
                "index": self._rel_idx,
                "tokens": self._tokens,
                "documents": len(self._offsets),
                "sha256": self._hash.hexdigest(),
            }
        )

    def close(self) -> list[dict[str, Any]]:
        if self._file is not None:
            self._close()
        return self.shards


def read_manifest(data_dir: str | Path) -> dict[str, Any]:
    """Validated manifest of a prepared DATA_DIR; DataError saying what to do when it is not."""
    path = Path(data_dir) / MANIFEST_FILE
    if not path.is_file():
        hint = " (a previous `prepare` did not finish)" if Path(data_dir).is_dir() else ""
        raise DataError(
            f"no prepared data in {data_dir}: {MANIFEST_FILE} is missing{hint}; "
            f"run `llmtrain prepare INPUT... --out {data_dir}` first"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path} is not valid JSON ({e}); prepare the data again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{path} is not an llmtrain data manifest (format != {FORMAT!r})")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise DataError(
            f"{path} has format_version {version!r}; this llmtrain reads version "
            f"{FORMAT_VERSION}: prepare the data again with this version"
        )
    for key in ("dtype", "tokenizer", "splits"):
        if key not in manifest:
            raise DataError(f"{path} is missing the key {key!r}; prepare the data again")
    if manifest["dtype"] not in ("uint16", "uint32"):
        raise DataError(f"{path} has dtype {manifest['dtype']!r}; expected uint16 or uint32")
    return manifest


def open_split(data_dir: str | Path, split: str) -> list[np.memmap]:
    """One read-only memmap of token ids per shard of `split` ("train" or "val")."""
    manifest = read_manifest(data_dir)
    if split not in manifest["splits"]:
        raise DataError(f"{data_dir} has no split {split!r}; it has {sorted(manifest['splits'])}")
    maps = []
    for shard in manifest["splits"][split]["shards"]:
        path = Path(data_dir) / shard["path"]
        if not path.is_file():
            raise DataError(f"shard {path} listed in the manifest is missing; prepare again")
        maps.append(np.memmap(path, dtype=np.dtype(manifest["dtype"]).newbyteorder("<"), mode="r"))
    return maps


def verify_shards(data_dir: str | Path) -> None:
    """Check every shard's size and sha256 against the manifest; DataError naming a bad shard."""
    manifest = read_manifest(data_dir)
    itemsize = np.dtype(manifest["dtype"]).itemsize
    for split, info in manifest["splits"].items():
        for shard in info["shards"]:
            path = Path(data_dir) / shard["path"]
            if not path.is_file():
                raise DataError(f"{split} shard {path} is missing")
            if path.stat().st_size != shard["tokens"] * itemsize:
                raise DataError(
                    f"{split} shard {path} holds {path.stat().st_size} bytes; the manifest "
                    f"expects {shard['tokens']} tokens x {itemsize} bytes: it is truncated or altered"
                )
            if sha256_file(path) != shard["sha256"]:
                raise DataError(
                    f"{split} shard {path} fails its sha256 check: the file was altered or "
                    "corrupted; prepare the data again"
                )
