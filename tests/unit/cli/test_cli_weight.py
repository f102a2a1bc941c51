"""The CLI stays light for commands that train nothing: building the parser, `--help` of
`finetune` aside, and a whole `llmtrain prepare` never import torch (~200 MB of RSS and a
second of start-up that a data job on a small machine should not pay)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = """
import sys
from llmtrain.cli.main import build_parser, main
build_parser()
assert "torch" not in sys.modules, "building the parser imported torch"
code = main(["prepare", sys.argv[1], "--out", sys.argv[2], "--tokenizer", "char", "--quiet"])
assert code == 0, code
assert "torch" not in sys.modules, "prepare imported torch"
print("light")
"""


def test_parser_and_prepare_do_not_import_torch(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("训练数据 and some English text.\n\n" * 200, encoding="utf-8")
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(text), str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0 and "light" in res.stdout, res.stderr[-2000:]


def test_finetune_help_still_lists_every_key(capsys):
    import pytest

    from llmtrain.cli.main import main

    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    out = capsys.readouterr().out
    assert "finetune.class_weights" in out and "finetune.lora.rank" in out
