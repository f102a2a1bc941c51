"""`release_free_memory()`: hand the C heap's free pages back to the operating system.

The tokenizer trainers (Rust) free hundreds of MiB when they finish, but glibc keeps freed
pages inside its heap, where they still count in the process's RSS and fragment what pass 2
allocates next. `malloc_trim(0)` returns them; elsewhere (macOS, musl) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _malloc_trim():  # the libc function, or None where there is none
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def release_free_memory() -> None:
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
