"""Shared helpers for the data tests: where the real corpora live and the `corpus` marker."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
needs_corpus = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"real corpora not found at {SHARED_DATA}"
)
