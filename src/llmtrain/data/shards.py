"""The prepared-data format (docs/data_format.md): token shards, document indexes, manifest.

Writing: `ShardWriter` streams documents (ids + EOS) into `SPLIT/shard_XXXXX.bin` with a
`.idx.npy` of document offsets, hashing as it goes; `state()` / `restore()` checkpoint it so
an interrupted writer goes on with the same bytes. Reading: `read_manifest`, `open_split`
(read-only memmaps) and `verify_shards` (sha256 of every shard against the manifest).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
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
_SHARD_FILE = re.compile(r"shard_(\d{5})\.(bin|idx\.npy)")
_READ = 1 << 20


class ShardStateError(DataError):
    """The shard files on disk do not hold what a writer state records."""


def shard_dtype(vocab_size: int) -> str:
    """ "uint16" when every id fits in 16 bits (vocab <= 65536), else "uint32"."""
    if vocab_size <= 0:
        raise DataError(f"vocab_size must be positive, got {vocab_size}")
    return "uint16" if vocab_size <= 1 << 16 else "uint32"


class ShardWriter:
    """Appends documents to the shards of one split, starting a new shard past `shard_tokens`.

    A document never straddles two shards. `close()` returns the manifest's shard records.
    `state()` makes what was written durable and describes it; `restore(state)` on a new
    writer cuts the files back to that point and goes on from there. The open shard's
    document offsets go to `OUT_DIR/{partial_prefix}{split}_shard_XXXXX.idx` at each
    `state()`; the writer never deletes that file (an older state may still need it after a
    crash): the caller removes it once no state it may restore refers to it.
    """

    def __init__(
        self, out_dir: Path, split: str, dtype: str, shard_tokens: int, eos_id: int,
        partial_prefix: str = ".partial_",
    ) -> None:  # fmt: skip
        self.out_dir, self.split, self.dtype = Path(out_dir), split, np.dtype(dtype)
        self.shard_tokens, self.eos_id = shard_tokens, eos_id
        self.partial_prefix = partial_prefix
        self.shards: list[dict[str, Any]] = []
        self._file = None
        self._synced = 0  # closed shards made durable by state()
        (self.out_dir / split).mkdir(parents=True, exist_ok=True)

    def _open(self, mode: str = "wb") -> None:
        name = f"{self.split}/shard_{len(self.shards):05d}"
        self._rel_bin, self._rel_idx = f"{name}.bin", f"{name}.idx.npy"
        self._file = open(self.out_dir / self._rel_bin, mode)  # noqa: SIM115 (closed in _close)
        self._hash = hashlib.sha256()
        self._offsets = array("Q")
        self._tokens = 0
        self._journaled = 0  # offsets already in the partial index (state())
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

    def _partial_index(self, number: int | None = None) -> Path:
        number = len(self.shards) if number is None else number
        return self.out_dir / f"{self.partial_prefix}{self.split}_shard_{number:05d}.idx"

    def state(self) -> dict[str, Any]:
        """Flush and fsync every shard written so far and the open shard's offsets (to its
        partial index); the JSON state that `restore` goes on from.

        Costs a flush and an fsync: call it every few MiB of documents, not per document."""
        self._flush_open()
        for shard in self.shards[self._synced :]:
            for rel in (shard["path"], shard["index"]):
                _fsync(self.out_dir / rel)
        self._synced = len(self.shards)
        if self._file is None:
            return {"shards": [dict(s) for s in self.shards], "open": None}
        os.fsync(self._file.fileno())
        offsets = np.frombuffer(self._offsets, dtype=np.uint64)
        with open(self._partial_index(), "r+b" if self._journaled else "wb") as f:
            f.seek(self._journaled * offsets.itemsize)
            f.truncate()
            f.write(offsets[self._journaled :].astype("<u8").tobytes())
            f.flush()
            os.fsync(f.fileno())
        self._journaled = len(offsets)
        open_shard = {"tokens": self._tokens, "documents": len(offsets),
                      "sha256": self._hash.copy().hexdigest()}  # fmt: skip
        return {"shards": [dict(s) for s in self.shards], "open": open_shard}

    def _flush_open(self) -> None:
        if self._file is not None:
            self._flush()
            self._file.flush()

    def restore(self, state: dict[str, Any]) -> None:
        """Go on from `state` (a `state()` of a writer of the same split, dtype and shard
        size): cut the open shard back to it, drop shards written after it.

        ShardStateError when the files do not hold what `state` records (missing, shorter,
        or other bytes): the caller starts this split again rather than mix outputs."""
        if self._file is not None or self.shards:
            raise ValueError("restore() needs a new writer")
        shards, open_shard = list(state["shards"]), state["open"]
        itemsize = self.dtype.itemsize
        for shard in shards:
            path, index = self.out_dir / shard["path"], self.out_dir / shard["index"]
            if not index.is_file() or _size(path) != shard["tokens"] * itemsize:
                raise ShardStateError(f"{path} (or its index) does not match the checkpoint")
        self._remove_after(len(shards), keep_open=open_shard is not None)
        self.shards, self._synced = shards, len(shards)
        if open_shard is not None:
            self._reopen(open_shard["tokens"], open_shard["documents"], open_shard["sha256"])

    def _remove_after(self, open_number: int, keep_open: bool) -> None:
        """Delete the files a crash left past a state: later shards, the open one's index
        (and its bytes and partial index when the state has no open shard)."""
        for path in (self.out_dir / self.split).iterdir():
            m = _SHARD_FILE.fullmatch(path.name)
            if m is None or int(m.group(1)) < open_number:
                continue
            if int(m.group(1)) > open_number or m.group(2) == "idx.npy" or not keep_open:
                path.unlink()
        for path in self.out_dir.glob(f"{self.partial_prefix}{self.split}_shard_*.idx"):
            if not (keep_open and path == self._partial_index(open_number)):
                path.unlink()

    def _reopen(self, tokens: int, documents: int, sha256: str) -> None:
        """Reopen the open shard at `tokens` tokens and `documents` offsets, checking both."""
        path = self.out_dir / f"{self.split}/shard_{len(self.shards):05d}.bin"
        if _size(path) < tokens * self.dtype.itemsize:
            raise ShardStateError(f"{path} is shorter than the checkpoint says")
        self._open("r+b")
        self._file.truncate(tokens * self.dtype.itemsize)
        while chunk := self._file.read(_READ):  # leaves the file at its end, to append
            self._hash.update(chunk)
        partial = self._partial_index()
        offsets = np.fromfile(partial, dtype="<u8", count=documents) if partial.is_file() else ()
        if self._hash.hexdigest() != sha256 or len(offsets) != documents:
            self._file.close()
            self._file = None
            raise ShardStateError(f"{path} or its partial index differs from the checkpoint")
        self._offsets.frombytes(np.asarray(offsets, dtype=np.uint64).tobytes())
        self._tokens, self._journaled = tokens, documents
        with open(partial, "r+b") as f:
            f.truncate(documents * 8)


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else -1


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _holds_raw_text(folder: Path) -> bool:
    """A folder of input files (no `train/` split, some file that `prepare` never writes)."""
    if not folder.is_dir() or (folder / SPLITS[0]).is_dir():
        return False
    own = {REPORT_FILE, "report.html", "documents.jsonl"}
    try:
        return any(
            p.is_file() and not p.name.startswith(".") and p.name not in own
            for p in folder.rglob("*")
        )
    except OSError:  # an unreadable subfolder: say nothing more than before
        return False


def read_manifest(data_dir: str | Path) -> dict[str, Any]:
    """Validated manifest of a prepared DATA_DIR; DataError saying what to do when it is not."""
    path = Path(data_dir) / MANIFEST_FILE
    if not path.is_file():
        if _holds_raw_text(Path(data_dir)):
            out = Path(data_dir).parent / f"{Path(data_dir).name}-prepared"
            raise DataError(
                f"{data_dir} holds raw text, not prepared data: prepare it into a separate "
                f"directory with `llmtrain prepare {data_dir} --out {out}`, then pass "
                f"--data {out}"
            )
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
