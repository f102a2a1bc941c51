"""The Python API: the README's snippet runs as written (on a tiny English/Chinese corpus,
with the model and step count shrunk underneath it), keyword options reach the right config
section, and mistakes get the CLI's one-line errors."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

import llmtrain as lt
from llmtrain.api import run_overrides
from llmtrain.errors import ConfigError

from .conftest import synthetic_corpus

README = Path(__file__).resolve().parents[2] / "README.md"
TINY = [
    *("model.n_layer=1", "model.n_head=2", "model.n_embd=32", "model.block_size=32"),
    *("train.max_steps=6", "train.batch_size=4", "train.warmup_steps=1", "train.eval_every=6"),
    *("train.eval_tokens=512", "train.checkpoint_every=6", "train.threads=1"),
    'train.precision="fp32"',
]


def readme_snippet() -> str:
    section = README.read_text(encoding="utf-8").split("### From Python", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_snippet_runs_as_written(tmp_path, monkeypatch, capsys):
    import llmtrain.train.config as train_config

    synthetic_corpus(tmp_path / "my_texts", n_docs=12)
    (tmp_path / "my_texts" / "zh.txt").write_text("从前有一座山，山里有一座庙。\n" * 20, "utf-8")
    monkeypatch.chdir(tmp_path)
    real = train_config.load_run_config

    def tiny(files=(), preset=None, overrides=(), base=None):  # same text, tiny sizes
        return real(files, preset, [*overrides, *TINY], base)

    monkeypatch.setattr(train_config, "load_run_config", tiny)
    start = time.monotonic()
    exec(compile(readme_snippet(), str(README), "exec"), {"__name__": "readme"})
    assert time.monotonic() - start < 60
    out = capsys.readouterr().out.strip().splitlines()
    assert "loss" in out[-2] and out[-1].startswith("Once upon a time")
    assert (tmp_path / "data/mine/manifest.json").is_file()
    assert (tmp_path / "runs/mine/checkpoints").is_dir()


def test_import_is_lazy():
    import subprocess

    code = "import sys, llmtrain; print('torch' in sys.modules, callable(llmtrain.train))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.stdout.split() == ["False", "True"], res.stderr


def test_api_names_stay_callable_beside_their_subpackages():
    import llmtrain.export.hf  # noqa: F401  (sets llmtrain.export to the subpackage)
    import llmtrain.train.config  # noqa: F401

    assert callable(lt.train) and callable(lt.export) and lt.train.config is not None


def test_keyword_options_find_their_section():
    assert run_overrides({"max_steps": 5, "n_layer": 2, "train.lr": 1e-3}) == [
        "train.max_steps=5",
        "model.n_layer=2",
        "train.lr=0.001",
    ]
    with pytest.raises(ConfigError, match="did you mean 'max_steps'"):
        run_overrides({"max_step": 5})


def test_bad_generate_options_fail_before_loading(tmp_path):
    with pytest.raises(ConfigError, match="top_p"):
        lt.generate(tmp_path / "no_run", "hi", top_p=2.0)
    with pytest.raises(ConfigError, match="did you mean 'vocab_size'"):
        lt.prepare(["x"], out=tmp_path / "d", vocab_sise=10)
