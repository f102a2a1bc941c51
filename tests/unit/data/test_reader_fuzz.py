"""The reader fuzz corpus (`fuzz_cases`): every hostile input is read in-process under a
per-case timeout with no traceback, no hang and no silent loss — the documents and the bad
inputs by kind are exactly what the case states, every file is accounted for, every bad
record names its place and the bytes it cost, and without --skip-bad-files the run stops
with one clear line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmtrain.data.prepare import Problems, Reader, csvread, formats, jsonread, plan_inputs, readers
from llmtrain.data.prepare.inputs import name_of
from llmtrain.errors import DataError

from .fuzz_cases import CASES, RECORD_KINDS, Case

PLAN_KINDS = {"broken_symlink", "symlink_loop", "path_too_long", "not_regular_file",
              "permission_denied", "unreadable_folder", "unreadable_path"}  # fmt: skip


def _read(case: Case, root: Path, skip_bad: bool):
    plan = plan_inputs([root], read_unknown=case.read_unknown)
    problems = Problems(skip_bad)
    reader = Reader(plan, case.text_field, problems)
    return plan, reader, problems, list(reader)


def _patch(case: Case, monkeypatch) -> None:
    if "doc" in case.patch:
        monkeypatch.setattr(readers, "MAX_DOCUMENT_BYTES", case.patch["doc"])
    if "record" in case.patch:
        for module in (formats, jsonread, csvread):
            monkeypatch.setattr(module, "MAX_RECORD_BYTES", case.patch["record"])


def _files(root: Path) -> list[Path]:
    """The non-hidden files (and symlinks to non-folders) a user put in `root`."""
    found = []
    for here, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(here) / f for f in files if not f.startswith(".")]
    return [f for f in found if len(os.fsencode(str(f))) < 4000]


def _printable(text: str) -> bool:
    return all(c.isprintable() for c in text)


def _check_accounting(case: Case, root: Path, plan, reader, problems, docs) -> None:
    items = problems.items
    for item in items:  # where and why, safe for a terminal; a bad record cost bytes
        assert item["where"] and _printable(item["where"]) and _printable(item["detail"]), item
        if item["kind"] in RECORD_KINDS:
            assert item["lost_bytes"] > 0, item
    sources = {d.source for d in docs}
    wheres = [i["where"] for i in items]
    silent = []
    for f in _files(root):
        name = name_of(f.resolve() if not f.is_symlink() else f)
        name_raw = name_of(f)
        seen = {name, name_raw}
        if seen & sources or any(w.startswith(tuple(seen)) for w in wheres):
            continue
        if f.is_symlink() and f.resolve().is_dir():
            continue
        silent.append(f)
    ignored = sum(plan.unsupported.values()) + reader.stats["unknown_files_not_text"]
    ignored += reader.stats["files_without_text"]  # counted on the console
    assert len(silent) <= ignored, f"files neither read, reported nor counted: {silent}"
    total = reader.stats["documents_read"]
    assert total == len(docs)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fuzz_case(case: Case, tmp_path, monkeypatch, capfd):
    root = tmp_path / "in"
    root.mkdir()
    case.build(root)
    _patch(case, monkeypatch)
    plan, reader, problems, docs = _read(case, root, skip_bad=True)
    got = dict(problems.counts)
    want = {
        k: got.get(k, 0) if n == -1 and got.get(k, 0) >= 1 else n for k, n in case.problems.items()
    }
    assert got == want, f"bad inputs {got}, expected {case.problems}"
    assert len(docs) == case.docs if case.docs >= 0 else len(docs) >= 1, len(docs)
    _check_accounting(case, root, plan, reader, problems, docs)
    printed = capfd.readouterr()
    assert printed.out == printed.err == "", "a reader printed to the terminal"
    if got:  # without --skip-bad-files: one clear line, no traceback
        with pytest.raises(DataError) as e:
            _read(case, root, skip_bad=False)
        assert "\n" not in str(e.value) and _printable(str(e.value))
    else:
        assert len(_read(case, root, skip_bad=False)[3]) == len(docs)


def test_fuzz_corpus_size():
    """The corpus covers every reader with at least 75 cases."""
    assert len(CASES) >= 75 and len({c.name for c in CASES}) == len(CASES)
