"""What a new user hit (issue 11, items 6 and 9): each a one-line fix with a test that failed
before it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmtrain.cli.main import main


def test_train_on_a_raw_text_folder_says_to_prepare_it_elsewhere(tmp_path, capsys):
    raw = tmp_path / "my_texts"
    raw.mkdir()
    (raw / "a.txt").write_text("Some text.\n从前有一座山。\n", encoding="utf-8")
    assert main(["train", "--data", str(raw), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "raw text" in err and f"llmtrain prepare {raw} --out " in err
    out = Path(err.split(" --out ", 1)[1].split()[0])
    assert raw not in out.parents and out != raw  # a separate output, not inside the raw folder
    assert "--data" in err
