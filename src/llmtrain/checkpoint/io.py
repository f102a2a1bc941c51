"""Checkpoint layout (one directory per step, complete or absent):

    RUN_DIR/checkpoints/step_000100/
        model.safetensors   weights of the unwrapped model (ties kept via save_model)
        optimizer.pt        optimizer state_dict: tensors and plain numbers only
        rng.pt              torch CPU (and CUDA) RNG states as uint8 tensors
        state.json          step, tokens, loader position, elapsed time, val loss, guards
        config.json         the resolved run config
        checksums.json      sha256 of every file above, verified at every load (train
                            --resume, eval, generate, export); required for checkpoints
                            written by this version (state.json "format" >= 2), skipped
                            only with `--no-verify`
        dcp/                (FSDP only) sharded model + optimizer, torch.distributed.checkpoint;
                            optimizer.pt is then absent and model.safetensors is gathered
        deepspeed/          (DeepSpeed only) the engine's own ZeRO checkpoint; optimizer.pt
                            is absent, model.safetensors converted by zero_to_fp32

Retention keeps the last K checkpoints plus the best by val loss (and never the last verified
one a `--no-verify` resume started after).
It is written into `.tmp-step_000100` and renamed, so a crash never leaves a directory that
looks complete. Loading never unpickles arbitrary objects.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
import torch.distributed as dist
from torch import nn

from llmtrain.errors import CheckpointError

PREFIX = "step_"
FILES = ("model.safetensors", "optimizer.pt", "rng.pt", "state.json", "config.json")
CHECKSUMS = "checksums.json"
FORMAT = 2  # state.json "format": 2 = checksums.json is required
DEEPSPEED_DIR = "deepspeed"  # engine.save_checkpoint's tag directory (strategy=deepspeed)


def _step_dir(ckpt_root: Path, step: int) -> Path:
    return ckpt_root / f"{PREFIX}{step:06d}"


def list_checkpoints(ckpt_root: str | Path) -> list[Path]:
    """Complete checkpoint directories, oldest first."""
    root = Path(ckpt_root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX)]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def latest_checkpoint(ckpt_root: str | Path) -> Path | None:
    found = list_checkpoints(ckpt_root)
    return found[-1] if found else None


def find_checkpoint(path: str | Path) -> Path:
    """Resolve a run directory, a checkpoints directory or a checkpoint to a checkpoint dir."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint or run directory not found: {p}")
    if (p / "model.safetensors").is_file() or (p / "dcp").is_dir():
        return p
    for root in (p / "checkpoints", p):
        latest = latest_checkpoint(root)
        if latest is not None:
            return latest
    raise CheckpointError(
        f"no checkpoint in {p}: expected a run directory with checkpoints/step_*/ or a "
        "checkpoint directory holding model.safetensors (train longer than "
        "train.checkpoint_every, or pass the right path)"
    )


def save_checkpoint(
    ckpt_root: str | Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    state: dict[str, Any],
    config: dict[str, Any],
    keep_last: int = 0,
    *,
    sharded: bool = False,
    full_weights: bool = True,
    protect: Path | None = None,
    write_weights: Callable[[Path], None] | None = None,
) -> Path:
    """Write checkpoint `step` atomically and prune old ones; returns its directory.

    Under torch.distributed every rank calls it: rank 0 writes the files, and with `sharded`
    (FSDP) every rank writes its shards into `dcp/` (plus, with `full_weights`, a gathered
    model.safetensors for eval/generate). A failure (a full disk, say) removes the partial
    temp directory and raises CheckpointError; earlier checkpoints are untouched.
    `write_weights(tmp_dir)`, collective, replaces the model/optimizer files (DeepSpeed's)."""
    root = Path(ckpt_root)
    final = _step_dir(root, step)
    tmp = root / f".tmp-{final.name}"
    rank0 = _rank() == 0
    err: OSError | None = None
    if rank0:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    _barrier()
    try:
        if write_weights is not None:
            write_weights(tmp)
            model, optimizer, sharded = None, None, False  # written by it
        _write_files(tmp, model, optimizer, state, config, sharded, full_weights, rank0)
    except OSError as e:
        err = e
    if not _all_ok(err is None):
        if rank0:
            shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(
            f"could not write checkpoint {final.name} ({err or 'another rank failed'}); "
            "earlier checkpoints are intact (is the disk full?)"
        )
    if rank0:
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        _fsync_dir(root)
        prune(root, keep_last, protect)
    _barrier()
    return final


def _write_files(
    tmp: Path,
    model: nn.Module | None,
    optimizer: torch.optim.Optimizer | None,
    state: dict[str, Any],
    config: dict[str, Any],
    sharded: bool,
    full_weights: bool,
    rank0: bool,
) -> None:
    if sharded:
        from llmtrain.checkpoint.sharded import full_model_state, save_sharded

        save_sharded(tmp, model, optimizer)
        weights = full_model_state(model) if full_weights else None  # collective
        if rank0 and weights is not None:
            safetensors.torch.save_file(weights, str(tmp / "model.safetensors"))
    elif rank0 and model is not None:
        safetensors.torch.save_model(model, str(tmp / "model.safetensors"))
        if optimizer is not None:
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    _barrier()
    if not rank0:
        return
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state()
    torch.save(rng, tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps({**state, "format": FORMAT}, indent=2))
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    write_checksums(tmp)


def prune(root: Path, keep_last: int, protect: Path | None = None) -> None:
    """Keep the last `keep_last` checkpoints plus the one with the lowest `val_loss` in its
    state.json (the best so far) and `protect`; 0 keeps all."""
    found = list_checkpoints(root)
    if keep_last <= 0 or len(found) <= keep_last:
        return
    keep = {_best_by_val_loss(found), protect}
    for old in found[:-keep_last]:
        if old not in keep:
            shutil.rmtree(old, ignore_errors=True)


def _best_by_val_loss(found: list[Path]) -> Path | None:
    scored = []
    for p in found:
        try:
            v = json.loads((p / "state.json").read_text()).get("val_loss")
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(v, (int, float)) and v == v:  # not NaN
            scored.append((v, -int(p.name[len(PREFIX) :]), p))
    return min(scored)[2] if scored else None


def best_checkpoint(ckpt_root: str | Path) -> Path | None:
    """The kept checkpoint with the lowest val loss (None when none recorded one)."""
    return _best_by_val_loss(list_checkpoints(ckpt_root))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_checksums(ckpt_dir: Path) -> None:
    """sha256 of every file in the checkpoint (dcp/ shards included) → checksums.json."""
    files = sorted(p for p in ckpt_dir.rglob("*") if p.is_file() and p.name != CHECKSUMS)
    sums = {p.relative_to(ckpt_dir).as_posix(): _sha256(p) for p in files}
    (ckpt_dir / CHECKSUMS).write_text(json.dumps(sums, indent=1))


def verify_checksums(ckpt_dir: str | Path, option: str = "--resume-from STEP") -> None:
    """Raise CheckpointError naming the first file whose sha256 differs from checksums.json,
    or checksums.json itself when a checkpoint of this version lacks it (checkpoints from
    before checksums existed load as they are). `option` names how to pick another one."""
    d = Path(ckpt_dir)
    earlier = f"use an earlier checkpoint ({option}), or --no-verify to load it anyway"
    if not (d / CHECKSUMS).is_file():
        state = read_json(d / "state.json")
        fmt = state.get("format", 1) if isinstance(state, dict) else 1
        if not isinstance(fmt, int) or fmt >= FORMAT:
            raise CheckpointError(
                f"checkpoint {d} has no {CHECKSUMS} (every checkpoint of this version has one: "
                f"it was removed or the copy is incomplete); {earlier}"
            )
        return
    sums = read_json(d / CHECKSUMS)
    if not isinstance(sums, dict):
        raise CheckpointError(f"checkpoint {d} is corrupt: {CHECKSUMS} is not an object")
    for rel, digest in sums.items():
        p = d / rel
        if not p.is_file():
            raise CheckpointError(f"checkpoint {d} is corrupt: {rel} is missing; {earlier}")
        if _sha256(p) != digest:
            raise CheckpointError(
                f"checkpoint {d} is corrupt: {rel} fails its sha256 check (the file changed "
                f"after it was written); {earlier}"
            )


def checkpoint_ok(ckpt_dir: Path) -> bool:
    """True when `ckpt_dir` passes `verify_checksums` and has a valid state.json."""
    try:
        verify_checksums(ckpt_dir)
        read_state(ckpt_dir)
    except CheckpointError:
        return False
    return True


LOOP_KEYS = ("step", "tokens", "elapsed_sec")  # what a resume needs from state.json


def read_state(ckpt_dir: str | Path, keys: tuple[str, ...] = LOOP_KEYS) -> dict[str, Any]:
    """state.json of a checkpoint with `keys` checked (counts: integers >= 0; elapsed_sec: a
    finite number >= 0): a one-line CheckpointError naming the file and key otherwise."""
    path = Path(ckpt_dir) / "state.json"
    state = read_json(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint file {path} is corrupt: not a JSON object")
    for key in keys:
        v = state.get(key)
        number = (float,) if key == "elapsed_sec" else ()
        ok = isinstance(v, (int, *number)) and not isinstance(v, bool) and 0 <= v < math.inf
        if not ok:
            want = "a number" if number else "an integer"
            raise CheckpointError(
                f"checkpoint file {path} is corrupt: '{key}' is {v!r}, expected {want} >= 0; "
                "use an earlier checkpoint (--resume-from STEP)"
            )
    return state


def _step_of(ckpt: Path) -> int | None:
    name = ckpt.name[len(PREFIX) :]
    return int(name) if ckpt.name.startswith(PREFIX) and name.isdigit() else None


def select_checkpoint(
    ckpt_root: str | Path, resume_from: int | str | Path | None = None, verify: bool = True
) -> Path | None:
    """The checkpoint a resume loads: the latest, or `resume_from` (a step number or a
    checkpoint directory). It is verified (unless `verify` is False); a bad one is an error
    that lists the checkpoints that do verify, never a silent fallback."""
    found = list_checkpoints(ckpt_root)
    if resume_from is None:
        ckpt = found[-1] if found else None
    elif isinstance(resume_from, int) or str(resume_from).isdigit():
        ckpt = Path(ckpt_root) / f"{PREFIX}{int(resume_from):06d}"
        if ckpt not in found:
            steps = ", ".join(str(int(c.name[len(PREFIX) :])) for c in found) or "none"
            raise CheckpointError(
                f"--resume-from {resume_from}: no checkpoint of that step in {ckpt_root} "
                f"(steps: {steps})"
            )
    else:
        ckpt = find_checkpoint(resume_from)
    if ckpt is None or not verify:
        return ckpt
    try:
        verify_checksums(ckpt)
        read_state(ckpt)
    except CheckpointError as e:
        good = [int(c.name[len(PREFIX) :]) for c in found if c != ckpt and checkpoint_ok(c)]
        msg = str(e)
        if "--resume-from" not in msg:
            msg += "; use an earlier checkpoint (--resume-from STEP)"
        hint = f" (checkpoints that verify: {', '.join(map(str, good))})" if good else ""
        raise CheckpointError(f"{msg}{hint}") from None
    return ckpt


def last_verified_checkpoint(ckpt_root: str | Path, upto: Path) -> Path | None:
    """The latest checkpoint at or before `upto` that verifies (None if none does)."""
    last = _step_of(upto)
    for c in reversed(list_checkpoints(ckpt_root)):
        step = _step_of(c)
        if (last is None or (step is not None and step <= last)) and checkpoint_ok(c):
            return c
    return None


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _all_ok(ok: bool) -> bool:
    if not (dist.is_available() and dist.is_initialized()):
        return ok
    t = torch.tensor(0.0 if ok else 1.0)
    dist.all_reduce(t)
    return t.item() == 0


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_model_weights(model: nn.Module, ckpt_dir: str | Path) -> None:
    """Load weights into `model` (strict), turning any corruption into CheckpointError."""
    path = Path(ckpt_dir) / "model.safetensors"
    if not path.is_file():
        raise CheckpointError(f"checkpoint weights missing: {path}")
    try:
        missing, unexpected = safetensors.torch.load_model(model, str(path), strict=False)
    except (safetensors.SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise CheckpointError(
            f"checkpoint weights {path} are corrupt or do not match the model ({e}); "
            "use an earlier checkpoint or retrain"
        ) from None
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {path} does not match the model: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]} (was it written with another model config?)"
        )


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"checkpoint file {path} is missing or corrupt: {e}") from None


def load_checkpoint(
    ckpt_dir: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    verify: bool = True,
    require: tuple[str, ...] = ("step",),
    load_weights: Callable[[Path], None] | None = None,
) -> dict[str, Any]:
    """Restore model, optimizer and RNG state; return the loop state (state.json).
    `load_weights(ckpt_dir)` replaces the model/optimizer part (DeepSpeed's engine).

    Checksums are verified first (unless `verify` is False), and state.json's `require`d keys
    (a resume: `LOOP_KEYS`). A checkpoint with `dcp/` (written under FSDP) loads into
    any world size, sharded or not, and a full one (DDP, one process) into an FSDP model too;
    under torch.distributed every rank calls this."""
    d = Path(ckpt_dir)
    if verify:
        verify_checksums(d)
    state = read_state(d, require)
    try:
        from llmtrain.checkpoint.sharded import is_sharded, load_full_into_sharded, load_sharded

        if load_weights is not None:
            load_weights(d)
        elif (d / DEEPSPEED_DIR).is_dir() and optimizer is not None:
            raise CheckpointError(
                f"checkpoint {d} was written by DeepSpeed (distributed.strategy=deepspeed): its "
                "optimizer state is DeepSpeed's; resume it with distributed.strategy=deepspeed "
                "(eval/generate/export read its model.safetensors as they are)"
            )
        elif (d / "dcp").is_dir():  # FSDP's: loads into FSDP, DDP or one process alike
            load_sharded(d, model, optimizer)
        elif is_sharded(model):  # a DDP / one-process checkpoint resumed under FSDP
            load_full_into_sharded(d, model, optimizer)
        else:
            load_model_weights(model, d)
            if optimizer is not None:
                opt_state = torch.load(d / "optimizer.pt", map_location="cpu", weights_only=True)
                optimizer.load_state_dict(opt_state)
        rng = torch.load(d / "rng.pt", map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except Exception as e:  # torch.load / DCP on damaged bytes: many exception types
        why = str(e).splitlines()[0][:200] if str(e) else ""
        raise CheckpointError(
            f"checkpoint {d} is corrupt ({type(e).__name__}: {why}); use an earlier "
            "checkpoint (--resume-from STEP)"
        ) from None
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])
    return state
