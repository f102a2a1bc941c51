"""What a new user hit (issue 11, items 6 and 9): each a one-line fix with a test that failed
before it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmtrain.cli.main import main

from .conftest import tiny_overrides


@pytest.fixture(scope="module")
def trained_run(char_data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    argv = ["train", "--out", str(run), "--quiet"]
    for s in tiny_overrides(char_data, 2):
        argv += ["--set", s]
    assert main(argv) == 0
    return run


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


def test_bad_sampling_options_fail_before_any_output(trained_run, capsys):
    argv = ["generate", str(trained_run), "--prompt", "hi", "--top-p", "2"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: top_p must be")


def test_env_finds_mlflow_installed_as_mlflow_skinny(capsys):
    import importlib.metadata as md

    pytest.importorskip("mlflow")
    assert main(["env", "--json"]) == 0
    import json

    info = json.loads(capsys.readouterr().out)
    assert "mlflow" not in info["missing"]
    if "mlflow-skinny" in md.packages_distributions().get("mlflow", []):
        assert info["libraries"]["mlflow"].endswith("(mlflow-skinny)")


def test_a_mistyped_flag_gets_a_suggestion(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--prest", "gpt2-mini", "--out", str(tmp_path / "run")])
    assert stop.value.code == 2
    assert "--prest (did you mean --preset?)" in capsys.readouterr().err


def test_outputs_respect_the_umask(tmp_path):
    from llmtrain.utils.io import atomic_write_json

    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "a.json", {"语言": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary left


def test_the_bar_moves_every_step_not_only_on_log_lines(char_data, tmp_path, monkeypatch):
    from llmtrain.monitor.console import TrainConsole
    from llmtrain.train.config import load_run_config
    from llmtrain.train.trainer import Trainer

    seen = []
    real = TrainConsole.print

    def spy(self, text):  # checkpoint lines: where is the bar then?
        seen.append((text.split(":")[0], self.progress.tasks[0].completed))
        real(self, text)

    monkeypatch.setattr(TrainConsole, "print", spy)
    sets = tiny_overrides(char_data, 8, **{"train.log_every": 10, "train.checkpoint_every": 4})
    Trainer(load_run_config(overrides=sets), tmp_path / "run", show_progress=True).fit()
    assert ("step 4", 4) in seen


def test_a_long_run_prints_its_estimated_time(monkeypatch):
    from llmtrain.monitor import console as mod

    clock = iter([0.0, 72.0, 144.0, 216.0])
    monkeypatch.setattr(mod.time, "perf_counter", lambda: next(clock))
    lines = []
    con = mod.TrainConsole(5000, 0, enabled=False)
    monkeypatch.setattr(con, "print", lines.append)
    for step in (1, 2, 3, 4):
        con.step(step)
    assert len(lines) == 1 and "4,998 more steps at 72 s/step = 4.2 days" in lines[0]
    assert mod.estimate_line(3, 3.0, 100) is None  # a short run: nothing to say
