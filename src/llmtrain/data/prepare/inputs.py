"""`plan_inputs`: the input arguments → the files to read, and what was not read and why.

Folders are walked in sorted order, following symlinked folders once (a loop is not
re-entered). Hidden entries and known binary types (.pdf, .png, ...) are counted and
skipped; other unknown extensions are read as text when they decode as UTF-8 (not with
`read_unknown=False`). FIFOs, devices, dangling or looping symlinks, unreadable folders and
paths the OS cannot open become `skipped` entries (reported as bad inputs); nothing is opened
here that could block.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# a module import (not `from ... import`): builtin.py imports Document from this package
import llmtrain.data.builtin as builtin
from llmtrain.data.prepare import formats
from llmtrain.data.prepare.formats import printable
from llmtrain.data.prepare.sniff import BINARY_SAMPLE, binary_reason
from llmtrain.errors import DataError

TEXT_SUFFIXES = (".txt", ".text", ".md", ".markdown", ".rst", ".tex", ".org")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
ZIP_SUFFIXES = (".zip",)
RECORD_SUFFIXES = (
    formats.CSV_SUFFIXES + formats.TABLE_SUFFIXES + formats.HTML_SUFFIXES + formats.WARC_SUFFIXES
)
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + JSONL_SUFFIXES + RECORD_SUFFIXES + ZIP_SUFFIXES
# never text: skipped (and counted) in folders, refused when named
_BINARY_TYPES = (
    "pdf doc docx xls xlsx ppt pptx odt ods epub mobi png jpg jpeg gif bmp tif tiff webp ico "
    "mp3 mp4 m4a wav flac ogg avi mov mkv webm bin exe dll so dylib o a pyc pyo class jar whl "
    "egg tar tgz 7z rar xz lz4 lzma npy npz pt pth safetensors ckpt h5 hdf5 pkl pickle db "
    "sqlite sqlite3 woff woff2 ttf otf eot iso dmg img msgpack onnx tflite"
)
BINARY_SUFFIXES = tuple("." + s for s in _BINARY_TYPES.split(" "))
BUILTIN_PREFIX = "builtin:"


@dataclass
class InputPlan:
    """What will be read: files in order, builtin corpora, and what was not read: `unsupported`
    (skipped by suffix, e.g. ".png" or "(hidden)"), and `skipped` entries that could not be
    looked at (`{"where", "kind", "detail", "fix"}`, reported as bad inputs)."""

    files: list[Path] = field(default_factory=list)
    builtins: list[str] = field(default_factory=list)
    unsupported: Counter[str] = field(default_factory=Counter)
    total_bytes: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)


def base_suffix(path: Path | str) -> str:
    """ ".txt" for a.txt, a.txt.gz, a.txt.bz2 and a.txt.zst."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in formats.COMPRESSIONS:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def name_of(path: Path | str) -> str:
    """`path` as text safe to print and write as JSON (undecodable bytes escaped)."""
    return printable(os.fsencode(str(path)), 10_000)


def _skip(plan: InputPlan, path: Path | str, kind: str, detail: str, fix: str) -> None:
    plan.skipped.append({"where": name_of(path), "kind": kind, "detail": detail, "fix": fix})


def _entry_stat(plan: InputPlan, path: str) -> os.stat_result | None:
    """stat() of `path` (following symlinks), or None after recording why it cannot be read."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            _skip(plan, path, "broken_symlink", f"is a symlink to {os.readlink(path)!r}, which "
                  "does not exist", "Remove the link or restore its target")  # fmt: skip
        else:
            _skip(plan, path, "unreadable_path", "vanished while the folder was read", "Rerun")
    except OSError as e:
        kind = {errno.ELOOP: "symlink_loop", errno.ENAMETOOLONG: "path_too_long",
                errno.EACCES: "permission_denied"}.get(e.errno or 0, "unreadable_path")  # fmt: skip
        fix = {"path_too_long": "Move it to a shorter path",
               "permission_denied": "Make it readable (e.g. chmod a+rx)"}.get(kind, "Fix or remove it")  # fmt: skip
        _skip(plan, path, kind, f"cannot be looked at ({e.strerror})", fix)
    return None


def _walk(folder: Path, exclude: Path | None, plan: InputPlan, read_unknown: bool) -> list[Path]:
    found: list[Path] = []
    seen_dirs: set[tuple[int, int]] = set()
    stack = [str(folder)]
    while stack:
        here = stack.pop()
        st = _entry_stat(plan, here)
        if st is None or (st.st_dev, st.st_ino) in seen_dirs:
            continue  # a symlink back to a folder already walked is not re-entered
        seen_dirs.add((st.st_dev, st.st_ino))
        try:
            with os.scandir(here) as it:
                names = sorted(e.name for e in it)
        except OSError as e:
            kind = "permission_denied" if e.errno == errno.EACCES else "unreadable_folder"
            _skip(plan, here, kind, f"folder cannot be listed ({e.strerror})",
                  "Make it readable (e.g. chmod a+rx) or leave it out")  # fmt: skip
            continue
        hf_dataset = any(name.endswith(".arrow") for name in names)
        subdirs = []
        for name in names:
            path = os.path.join(here, name)
            if name.startswith("."):
                plan.unsupported["(hidden)"] += 1
                continue
            st = _entry_stat(plan, path)
            if st is None:
                continue
            if stat.S_ISDIR(st.st_mode):
                if exclude is None or Path(path) != exclude:
                    subdirs.append(path)
            elif not stat.S_ISREG(st.st_mode):
                _skip(plan, path, "not_regular_file", "is not a regular file (a FIFO, device "
                      "or socket)", "Leave it out of the input folders")  # fmt: skip
            elif hf_dataset and name in formats.HF_METADATA_FILES:
                plan.unsupported["(dataset metadata)"] += 1
            else:
                _add_found(Path(path), plan, found, read_unknown)
        stack.extend(reversed(subdirs))
    return found


def _add_found(path: Path, plan: InputPlan, found: list[Path], unknown: bool) -> None:
    suffix = base_suffix(path)
    if suffix in SUPPORTED_SUFFIXES or (unknown and suffix not in BINARY_SUFFIXES):
        found.append(path)
    else:
        plan.unsupported[suffix or "(no suffix)"] += 1


def _sniff_text(path: Path) -> bool:
    """Whether a file of unknown type starts like UTF-8 text."""
    try:
        with formats.open_binary(path) as f:
            sample = f.read(BINARY_SAMPLE)
    except (OSError, formats.FormatError):
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(sample) - 4:  # not a character cut at the sample's end
            return False
    return binary_reason(sample) is None


def plan_inputs(
    inputs: list[str | Path], exclude: Path | None = None, read_unknown: bool = True
) -> InputPlan:
    """Expand `inputs`; DataError for a missing path, unknown builtin or unsupported file."""
    if not inputs:
        raise DataError("no input given: pass one or more files, folders or builtin:python")
    plan = InputPlan()
    exclude = exclude.resolve() if exclude is not None else None
    seen: set[Path] = set()
    for item in inputs:
        if isinstance(item, str) and item.startswith(BUILTIN_PREFIX):
            _add_builtin(plan, item)
            continue
        for p in _expand(Path(item), exclude, plan, read_unknown):
            if p not in seen:
                seen.add(p)
                plan.files.append(p)
                plan.total_bytes += _size(p)
    return plan


def _add_builtin(plan: InputPlan, item: str) -> None:
    name = item[len(BUILTIN_PREFIX) :]
    if name not in builtin.BUILTIN_CORPORA:
        raise DataError(
            f"unknown built-in corpus {item!r}; available: "
            + ", ".join(BUILTIN_PREFIX + k for k in builtin.BUILTIN_CORPORA)
        )
    plan.builtins.append(name)
    plan.total_bytes += builtin.BUILTIN_CORPORA[name]()


def _expand(path: Path, exclude: Path | None, plan: InputPlan, read_unknown: bool) -> list[Path]:
    try:
        st = path.stat()
    except OSError as e:
        if isinstance(e, FileNotFoundError) and not path.is_symlink():
            raise DataError(
                f"input path not found: {name_of(path)} (check the spelling and the folder)"
            ) from None
        raise DataError(f"input path {name_of(path)} cannot be read ({e.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        if exclude is not None and exclude in (path.resolve(), *path.resolve().parents):
            raise DataError(
                f"input folder {name_of(path)} is inside the output directory {exclude}; "
                "write --out somewhere else (e.g. beside the raw text)"
            )
        return _walk(path.resolve(), exclude, plan, read_unknown)
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"input {name_of(path)} is not a regular file (a FIFO, device or "
                        "socket); write its content to a file first")  # fmt: skip
    suffix = base_suffix(path)
    if suffix not in SUPPORTED_SUFFIXES and (
        not read_unknown or suffix in BINARY_SUFFIXES or not _sniff_text(path)
    ):
        raise DataError(
            f"input file {name_of(path)} has an unsupported type {suffix or '(none)'!r}"
            f"{'' if suffix in BINARY_SUFFIXES or not read_unknown else ' and is not UTF-8 text'}; "
            f"supported: {' '.join(SUPPORTED_SUFFIXES)} (optionally "
            f"{' '.join(formats.COMPRESSIONS)}), or any UTF-8 text file"
        )
    return [path.resolve()]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
