"""Built-in demo corpus that every Python installation carries, so a demo needs no download.

`builtin:python` is the standard library's own `.py` sources (tests, idlelib, turtledemo,
site-packages, bundled wheels and generated codec tables skipped) plus the `pydoc` help
topics: ~10 MB of English prose and code. `builtin_corpus_documents("python")` streams them.
"""

from __future__ import annotations

import os
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path

from llmtrain.data.prepare.documents import Document

_SKIP_DIRS = {
    "test", "tests", "idle_test", "idlelib", "turtledemo", "site-packages", "dist-packages",
    "lib2to3", "__pycache__", "_bundled", "ensurepip", "venv", "pydoc_data",
    # ~1.3 MB of generated charmap tables ("0x00a4: 0x20ac, # EURO SIGN"): a small model
    # trained on them babbles hex codes.
    "encodings",
}  # fmt: skip


def python_stdlib_files() -> list[Path]:
    """The stdlib's `.py` files in sorted order (non-code and test directories skipped)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    found = []
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(
            d for d in dirs if d not in _SKIP_DIRS and not d.startswith((".", "config-"))
        )
        found.extend(Path(here) / f for f in sorted(files) if f.endswith(".py"))
    return found


def _pydoc_topics() -> dict[str, str]:
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions strip pydoc_data
        return {}
    return dict(topics)


def _python_size() -> int:
    """Approximate bytes of `builtin:python`, for progress bars."""
    files = sum(p.stat().st_size for p in python_stdlib_files())
    return files + sum(len(t.encode("utf-8")) for t in _pydoc_topics().values())


def _python_documents() -> Iterator[Document]:
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in python_stdlib_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # a stray non-UTF-8 or unreadable file: demo data, not worth a failure
        rel = path.relative_to(root).as_posix()
        yield Document(text=text, id=f"python-stdlib/{rel}", source="builtin:python")
    for name, text in sorted(_pydoc_topics().items()):
        yield Document(text=text, id=f"pydoc-topic/{name}", source="builtin:python")


# name -> function returning the approximate size in bytes; documents come from
# `builtin_corpus_documents(name)`.
BUILTIN_CORPORA: dict[str, Callable[[], int]] = {"python": _python_size}
_DOCUMENTS: dict[str, Callable[[], Iterator[Document]]] = {"python": _python_documents}


def builtin_corpus_documents(name: str = "python") -> Iterator[Document]:
    """Stream the documents of built-in corpus `name` (only "python" today)."""
    return _DOCUMENTS[name]()
