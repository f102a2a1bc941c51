"""Hostile `train --set` values and `--out` paths: each is refused before training starts
with exit 2 and ONE line on stderr naming the key (no traceback, no checkpoint, nothing
half-written). Floats must be finite, counts positive where it matters, seeds in range,
and the run directory a writable directory."""

from __future__ import annotations

import os

import pytest

from llmtrain.cli.main import main

from .conftest import tiny_overrides

# (--set value, a fragment the one-line error must hold)
BAD_SETS = [
    ("train.lr=NaN", "train.lr"),
    ("train.lr=Infinity", "train.lr"),
    ("train.lr=-Infinity", "train.lr"),
    ("train.lr=0", "train.lr"),
    ("train.lr=-0.001", "train.lr"),
    ('train.lr="fast"', "train.lr"),
    ("train.min_lr=NaN", "train.min_lr"),
    ("train.grad_clip=NaN", "train.grad_clip"),
    ("train.grad_clip=-1", "train.grad_clip"),
    ("train.seed=-1", "train.seed"),
    ("train.seed=1e30", "train.seed"),
    ("train.seed=4294967296", "train.seed"),
    ("train.seed=1.5", "train.seed"),
    ("train.keep_last=-1", "train.keep_last"),
    ("train.eval_tokens=-5", "train.eval_tokens"),
    ("train.eval_tokens=0", "train.eval_tokens"),
    ("train.batch_size=0", "train.batch_size"),
    ("train.micro_batch_size=3", "train.micro_batch_size"),
    ("train.micro_batch_size=0", "train.micro_batch_size"),
    ("train.max_steps=-2", "train.max_steps"),
    ("train.warmup_steps=-1", "train.warmup_steps"),
    ("train.log_every=0", "train.log_every"),
    ("train.threads=0", "train.threads"),
    ("train.lr_decay_steps=0", "train.lr_decay_steps"),
    ("train.sample_every=-1", "train.sample_every"),
    ("train.max_time_sec=-5", "train.max_time_sec"),
    ("train.wsd_decay_fraction=NaN", "train.wsd_decay_fraction"),
    ("train.plateau_factor=Infinity", "train.plateau_factor"),
    ("train.max_steps=1e300", "train.max_steps"),
    ("optim.weight_decay=NaN", "optim.weight_decay"),
    ("optim.beta2=Infinity", "optim.beta2"),
    ("model.dropout=NaN", "model.dropout"),
    ("model.rope_theta=-Infinity", "model.rope_theta"),
    ("objective.mask_prob=NaN", "objective.mask_prob"),
    ("stability.spike_zscore=NaN", "stability.spike_zscore"),
    ("train.objective=mlm", "train.objective"),
    ("train.lrr=0.1", "did you mean 'train.lr'"),
]


def _refused(capsys, run, argv: list[str], fragment: str) -> None:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (code, out[-500:], err[-500:])
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert "Traceback" not in err + out and fragment in err, err
    assert not (run / "checkpoints").exists() and not (run / "metrics.jsonl").exists()


@pytest.mark.parametrize("setting, fragment", BAD_SETS, ids=[s for s, _ in BAD_SETS])
def test_bad_set_value_is_one_line_before_training(char_data, tmp_path, capsys, setting, fragment):
    run = tmp_path / "run"
    argv = ["train", "--data", str(char_data), "--out", str(run), "--quiet"]
    for o in [*tiny_overrides(char_data, steps=2), setting]:
        argv += ["--set", o]
    _refused(capsys, run, argv, fragment)


@pytest.mark.parametrize(
    "out, fragment",
    [
        ("/dev/null", "is not a directory"),
        ("/proc/llmtrain_run", "not a writable directory"),
        ("FILE", "is not a directory"),
        ("FILE/run", "not a writable directory"),
    ],
)
def test_out_must_be_a_writable_directory(char_data, tmp_path, capsys, out, fragment):
    (tmp_path / "FILE").write_text("x")
    out = out.replace("FILE", str(tmp_path / "FILE"))
    argv = ["train", "--data", str(char_data), "--out", out, "--quiet"]
    for o in tiny_overrides(char_data, steps=2):
        argv += ["--set", o]
    _refused(capsys, tmp_path / "none", argv, fragment)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod 000")
def test_read_only_out_is_refused(char_data, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    argv = ["train", "--data", str(char_data), "--out", str(ro / "run"), "--quiet"]
    _refused(capsys, ro / "run", argv, "not a writable directory")


@pytest.mark.parametrize("budget", ["NaN", "-5", "soon"])
def test_bad_max_time_is_one_line(char_data, tmp_path, capsys, budget):
    run = tmp_path / "run"
    argv = ["train", "--data", str(char_data), "--out", str(run), "--quiet", "--max-time", budget]
    for o in tiny_overrides(char_data, steps=2):
        argv += ["--set", o]
    _refused(capsys, run, argv, "max")
