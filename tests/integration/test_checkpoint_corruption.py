"""Damaged checkpoints: every command that loads one (train --resume, generate, eval,
export) verifies it and refuses a bad one with ONE line naming how to pick another
(`--resume-from STEP`, a checkpoint directory, or `--no-verify`); checksums are required for
this version's checkpoints; a resume never prunes the last checkpoint that verifies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from llmtrain.checkpoint.io import write_checksums
from llmtrain.cli.main import main

from .conftest import tiny_overrides


@pytest.fixture(scope="module")
def trained(char_data, tmp_path_factory) -> Path:
    """A run with checkpoints at steps 2, 4 and 6."""
    run = tmp_path_factory.mktemp("ckpt") / "run"
    sets = {"train.checkpoint_every": 2, "train.keep_last": 0, "train.eval_every": 100}
    assert main(train_argv(char_data, run, steps=6, **sets)) == 0
    return run


def train_argv(data: Path, run: Path, *flags: str, steps: int = 6, **sets: object) -> list[str]:
    argv = ["train", "--data", str(data), "--out", str(run), "--quiet", *flags]
    for o in tiny_overrides(data, steps=steps, **sets):
        argv += ["--set", o]
    return argv


def copy(trained: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    return run


def ckpt(run: Path, step: int) -> Path:
    return run / "checkpoints" / f"step_{step:06d}"


def flip(path: Path, offset: int = -9) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF  # inside the tensor data: loads fine, wrong weights
    path.write_bytes(bytes(data))


def steps_on_disk(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").iterdir())


def one_line_error(capsys, code: int, *fragments: str) -> str:
    out, err = capsys.readouterr()
    assert code == 2, (code, out[-300:], err[-300:])
    assert err.count("\n") == 1 and "Traceback" not in err + out, err
    for f in fragments:
        assert f in err, (f, err)
    return err


def edit_state(run: Path, step: int, edit) -> None:
    """Change state.json and re-seal the checksums (what a buggy writer would leave)."""
    path = ckpt(run, step) / "state.json"
    state = json.loads(path.read_text())
    path.write_text(edit(state) if callable(edit) else edit)
    write_checksums(ckpt(run, step))


RESUME_REFUSED = [
    ("flipped weights", lambda r: flip(ckpt(r, 6) / "model.safetensors"), "sha256"),
    (
        "truncated weights",
        lambda r: (ckpt(r, 6) / "model.safetensors").write_bytes(b"\0" * 9),
        "sha256",
    ),
    ("flipped optimizer", lambda r: flip(ckpt(r, 6) / "optimizer.pt"), "sha256"),
    ("deleted optimizer", lambda r: (ckpt(r, 6) / "optimizer.pt").unlink(), "is missing"),
    (
        "checksums deleted + flipped",
        lambda r: (
            (ckpt(r, 6) / "checksums.json").unlink(),
            flip(ckpt(r, 6) / "model.safetensors"),
        ),
        "no checksums.json",
    ),
    ("checksums garbage", lambda r: (ckpt(r, 6) / "checksums.json").write_text("[1,"), "corrupt"),
    (
        "state step missing",
        lambda r: edit_state(
            r, 6, lambda s: json.dumps({k: v for k, v in s.items() if k != "step"})
        ),
        "'step' is None",
    ),
    (
        "state step a string",
        lambda r: edit_state(r, 6, lambda s: json.dumps({**s, "step": "6"})),
        "'step' is '6'",
    ),
    ("state not json", lambda r: edit_state(r, 6, "{not json"), "state.json is missing or corrupt"),
    (
        "state elapsed a string",
        lambda r: edit_state(r, 6, lambda s: json.dumps({**s, "elapsed_sec": "soon"})),
        "'elapsed_sec' is 'soon'",
    ),
    (
        "resealed truncated optimizer",
        lambda r: (
            (ckpt(r, 6) / "optimizer.pt").write_bytes(b"PK\x03\x04junk"),
            write_checksums(ckpt(r, 6)),
        ),
        "is corrupt",
    ),
]


@pytest.mark.parametrize("damage, fragment", [c[1:] for c in RESUME_REFUSED],
                         ids=[c[0] for c in RESUME_REFUSED])  # fmt: skip
def test_resume_refuses_a_damaged_checkpoint_and_keeps_the_older_ones(
    char_data, trained, tmp_path, capsys, damage, fragment
):
    run = copy(trained, tmp_path)
    damage(run)
    code = main(train_argv(char_data, run, "--resume", steps=12, **{"train.keep_last": 1}))
    one_line_error(capsys, code, fragment, "--resume-from")  # names how to pick another
    assert steps_on_disk(run) == ["step_000002", "step_000004", "step_000006"]  # nothing pruned


def test_refusal_lists_the_checkpoints_that_verify(char_data, trained, tmp_path, capsys):
    run = copy(trained, tmp_path)
    flip(ckpt(run, 6) / "model.safetensors")
    flip(ckpt(run, 2) / "rng.pt")
    code = main(train_argv(char_data, run, "--resume", steps=8))
    one_line_error(capsys, code, "(checkpoints that verify: 4)")


def test_resume_from_an_earlier_step_continues_there(char_data, trained, tmp_path, capsys):
    run = copy(trained, tmp_path)
    flip(ckpt(run, 6) / "model.safetensors")
    assert main(train_argv(char_data, run, "--resume-from", "4", steps=8)) == 0
    out = capsys.readouterr().out
    assert f"resuming from step 4 (checkpoint {ckpt(run, 4)})" in out
    assert '"step": 8' in out and ckpt(run, 8).is_dir()


def test_resume_from_an_unknown_step_lists_the_steps(char_data, trained, tmp_path, capsys):
    run = copy(trained, tmp_path)
    code = main(train_argv(char_data, run, "--resume-from", "5", steps=8))
    one_line_error(capsys, code, "--resume-from 5", "(steps: 2, 4, 6)")


def test_no_verify_resume_never_prunes_the_last_verified_checkpoint(
    char_data, trained, tmp_path, capsys
):
    run = copy(trained, tmp_path)
    (ckpt(run, 6) / "checksums.json").unlink()
    flip(ckpt(run, 6) / "model.safetensors")
    argv = train_argv(char_data, run, "--resume", "--no-verify", steps=12)
    assert main(argv + ["--set", "train.keep_last=1"]) == 0
    capsys.readouterr()
    kept = steps_on_disk(run)
    assert "step_000004" in kept and "step_000012" in kept and "step_000002" not in kept


LOADERS = {
    "generate": lambda run, tmp: ["generate", str(run), "--max-new-tokens", "4", "--seed", "1"],
    "eval": lambda run, tmp: ["eval", str(run), "--max-tokens", "256"],
    "export": lambda run, tmp: ["export", str(run), "--out", str(tmp / "hf")],
}


@pytest.mark.parametrize("command", sorted(LOADERS))
def test_every_loading_command_refuses_flipped_weights(trained, tmp_path, capsys, command):
    run = copy(trained, tmp_path)
    flip(ckpt(run, 6) / "model.safetensors")
    code = main(LOADERS[command](run, tmp_path))
    one_line_error(capsys, code, "model.safetensors fails its sha256 check", "--no-verify")
    assert not (tmp_path / "hf").exists()


def test_generate_refuses_a_checkpoint_without_checksums(trained, tmp_path, capsys):
    run = copy(trained, tmp_path)
    (ckpt(run, 6) / "checksums.json").unlink()
    one_line_error(capsys, main(LOADERS["generate"](run, tmp_path)), "no checksums.json")


def test_generate_no_verify_loads_anyway(trained, tmp_path, capsys):
    run = copy(trained, tmp_path)
    flip(ckpt(run, 6) / "model.safetensors")
    assert main([*LOADERS["generate"](run, tmp_path), "--prompt", "语言", "--no-verify"]) == 0
    assert capsys.readouterr().out.startswith("语言")
