"""`prepare_corpus(inputs, out_dir, cfg)`: raw text → tokenizer + token shards + manifest.

Pass 1 (`clean_pass`) streams read → normalise → [language] → [quality filters] → [pii] →
min_length → exact_dedup → [decontaminate] → [near_dedup index] into a temporary spool
(bracketed steps are opt-in); near duplicates are then dropped from the spool; the split is
decided from what survived; the tokenizer trains on the train split; pass 2 encodes and
packs the spool into shards. `report.json` and then `manifest.json` are written last, so a
crash never leaves a directory that looks complete.

Resume (`--resume`): pass 1 checkpoints every `checkpoint_bytes` of input (64 MiB), then
after near-dedup, then once the tokenizer is saved (`resume`); pass 2 checkpoints every
`checkpoint_bytes` of text packed (the shard writers' state and the spool position), then
once the shards are complete; a rerun after a crash goes on from the last checkpoint with
byte-identical output. A user error (DataError, ConfigError) removes the temporaries instead.

Memory (bench/prepare_memory.py): every per-document record lives on disk (spool,
exact-dedup SQLite table, LSH band and signature files, the split decided from a dozen numbers).
RAM holds ~45 MiB of interpreter and libraries, the SQLite page cache (64 MiB), the encode
chunk (1 MiB of text, ~40 MiB of token encodings), the LSH sort (~64 MiB a part, signature
rows of 16k pairs, 14 MiB) and the tokenizer trainer, bounded by `tokenizer_train_bytes`
because it reads only that much text: byte-level BPE on 64 MiB measured a 197 MiB peak for
the whole run on prose and 350 MiB when every document adds a distinct word (the trainer's
word counts grow with distinct words, which the byte cap bounds). Both stay flat from 0.25
to 1 GiB of input. Near-dedup's clustering (`lsh.cluster_bands`) adds fixed scratch and
5 bytes a document (int32 union-find labels + the 1-byte drop mask; none is held during
tokenizer training and packing): 117 MiB peak at 3.0 M documents, below the tokenizer's
share, so a run with near-dedup measured 187 MiB at 0.25 GiB and 195 MiB at 1 GiB of input
(it was 268 / 365 MiB while freed sort arrays, a 64k-pair block of signature rows and the
last partition block stayed resident).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmtrain.data.prepare.clean_pass import (
    NEAR_DEDUP_DIR,
    CheckpointMismatch,
    CleanResult,
    clean_pass,
    pick_state,
)
from llmtrain.data.prepare.config import PrepareConfig
from llmtrain.data.prepare.heap import release_free_memory
from llmtrain.data.prepare.keep_text import KEPT_TEXT_FILE, finish_kept_text
from llmtrain.data.prepare.manifest import build_manifest, compression, split_figures
from llmtrain.data.prepare.pack import (
    encode_group_chars,
    encoding_pieces,
    open_packer,
    pack_records,
)
from llmtrain.data.prepare.quality import QUALITY_STEPS
from llmtrain.data.prepare.readers import InputPlan, plan_inputs
from llmtrain.data.prepare.report_html import REPORT_HTML, write_report_html
from llmtrain.data.prepare.resume import fingerprint, load_checkpoint, save_checkpoint
from llmtrain.data.prepare.signals import interruptible
from llmtrain.data.prepare.split import SplitRule, contiguous_at
from llmtrain.data.prepare.spool import read_spool, read_spool_from
from llmtrain.data.prepare.summary import print_summary
from llmtrain.data.shards import (
    MANIFEST_FILE,
    REPORT_FILE,
    SPLITS,
    TOKENIZER_DIR,
    read_manifest,
    shard_dtype,
)
from llmtrain.errors import DataError, LLMTrainError
from llmtrain.tokenizer import (
    META_FILE,
    Tokenizer,
    load_tokenizer,
    tokenizer_sha256,
    train_tokenizer,
)
from llmtrain.tokenizer.bpe import BACKEND_FILE
from llmtrain.tokenizer.spm import MODEL_FILE
from llmtrain.tokenizer.train import train_bytes_for, vocab_report
from llmtrain.utils.io import atomic_write_json
from llmtrain.utils.progress import progress

TEMPORARY_PREFIX = ".prepare_"  # the spool, dedup tables, checkpoint: gone once complete
PARTIAL_INDEX_PREFIX = TEMPORARY_PREFIX + "pack_"  # the open shards' offsets (checkpoints)
_OUTPUTS = (REPORT_FILE, REPORT_HTML, KEPT_TEXT_FILE, TOKENIZER_DIR, *SPLITS)
_SHARD_NAME = re.compile(r"shard_\d{5}\.(bin|idx\.npy)")
_TOKENIZER_FILES = {META_FILE, BACKEND_FILE, MODEL_FILE}


@dataclass
class SplitPlan:
    method: str  # "contiguous" | "document"
    rule: SplitRule | None  # which documents go to val (document method)
    cut: int | None  # character index where val starts in document `cut_doc` (contiguous)
    cut_doc: int = 0  # documents before it go to train, after it to val (contiguous)

    def pairs(self, i: int, score: int, text: str) -> list[tuple[str, str]]:
        """The (split, text) pairs of document i: the one cut in two gives both sides."""
        if self.rule is not None:
            return [("val" if self.rule.is_val(i, score) else "train", text)]
        if i != self.cut_doc:
            return [("train" if i < self.cut_doc else "val", text)]
        pairs = [("train", text[: self.cut]), ("val", text[self.cut :])]
        return [pair for pair in pairs if pair[1]]


def _written_by_prepare(path: Path) -> bool:
    """Whether an existing output path holds only what `prepare` writes there."""
    if path.name in SPLITS:
        return path.is_dir() and all(_SHARD_NAME.fullmatch(p.name) for p in path.iterdir())
    if path.name == TOKENIZER_DIR:
        return path.is_dir() and all(p.name in _TOKENIZER_FILES for p in path.iterdir())
    if path.name == NEAR_DEDUP_DIR:
        return path.is_dir() and all(p.name.startswith("band_") for p in path.iterdir())
    return path.is_file()  # report.json, the spool, the checkpoint


def prepare_output_dir(out: Path, overwrite: bool) -> None:
    """Refuse a complete DATA_DIR unless `overwrite`; remove stale outputs (manifest first).

    Only paths that hold nothing but `prepare`'s own files are removed: `--out .` in a folder
    with its own `train/` is refused rather than emptied.
    """
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} exists and is not a directory; choose a directory path")
    manifest = out / MANIFEST_FILE
    if manifest.exists() and not overwrite:
        raise DataError(
            f"{out} already holds prepared data ({MANIFEST_FILE} exists); pass --overwrite to "
            "replace it, or choose another --out directory"
        )
    stale = [out / name for name in _OUTPUTS if (out / name).exists()]
    stale += _temporaries(out)
    foreign = [str(p) for p in stale if not _written_by_prepare(p)]
    if foreign:
        raise DataError(
            f"--out {out} holds {', '.join(foreign)}, which llmtrain prepare did not write; "
            "choose an empty or new --out directory"
        )
    out.mkdir(parents=True, exist_ok=True)
    manifest.unlink(missing_ok=True)  # from here on the directory no longer looks complete
    for path in stale:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def _temporaries(out: Path) -> list[Path]:
    return sorted(out.glob(TEMPORARY_PREFIX + "*")) if out.is_dir() else []


def _remove_temporaries(out: Path) -> None:
    for path in _temporaries(out):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _empty_corpus_message(clean: CleanResult) -> str:
    counts = {step.name: dict(step.stats) for step in clean.steps}  # StepCounts
    read = counts["read"]
    removed = [
        f"{n} {key.removeprefix('removed_')}"
        for c in counts.values()
        for key, n in c.items()
        if key.startswith("removed_")
    ]
    bad = sum(clean.problems.counts.values())
    return (
        f"the corpus is empty: nothing is left after reading and cleaning "
        f"({read.get('files_read', 0)} files and {read.get('documents_read', 0)} documents read"
        + (f"; removed: {', '.join(removed)}" if removed else "")
        + (f"; {bad} bad inputs skipped" if bad else "")
        + (
            f"; unsupported files ignored: {dict(clean.plan.unsupported)}"
            if clean.plan.unsupported
            else ""
        )
        + "). Check the input paths, --text-field and --min-chars"
    )


def _plan_split(clean: CleanResult, cfg: PrepareConfig) -> SplitPlan:
    """The document split, or the contiguous one when `SplitRule.contiguous` says so."""
    if not clean.rule.contiguous():
        return SplitPlan("document", clean.rule, None)
    if clean.documents == 1:
        _, text = next(read_spool(clean.spool))
        if len(text) < 2:
            raise DataError(
                f"the corpus is one document of {len(text)} character(s): too small to split "
                "into train and val; add more text"
            )
    total = clean.rule.chars or sum(len(text) for _, text in read_spool(clean.spool))
    texts = (text for _, text in read_spool(clean.spool))
    j, cut = contiguous_at(texts, total, cfg.val_fraction)
    return SplitPlan("contiguous", None, cut, j)


def _split_records(
    clean: CleanResult, split: SplitPlan, start: int = 0, offset: int = 0
) -> Iterator[tuple[int, list[tuple[str, str]]]]:
    """(spool offset past the document, its (split, text) pairs) for every spooled document
    from the `start`-th (at byte `offset`) on; the contiguous split cuts one in two."""
    for i, (end, score, text) in enumerate(read_spool_from(clean.spool, offset), start):
        yield end, split.pairs(i, score, text)


def _split_texts(clean: CleanResult, split: SplitPlan) -> Iterator[tuple[str, str]]:
    """(split, text) for every spooled document, the contiguous split's cut one in two."""
    for _, pairs in _split_records(clean, split):
        yield from pairs


def _split_names(clean: CleanResult, split: SplitPlan) -> Iterator[str]:
    """The split of each kept document, in spool order ("train+val": the one cut in two)."""
    for i, (score, text) in enumerate(read_spool(clean.spool)):
        yield "+".join(name for name, _ in split.pairs(i, score, text))


def select_part(plan: InputPlan, index: int, num: int) -> InputPlan:
    """Part `index` of `num`: every num-th input file (and built-in corpora in part 0).

    Files are dealt round-robin in their sorted order, so parts get similar amounts of work
    and the same inputs always make the same parts. Deduplication runs within a part.
    """
    if num == 1:
        return plan
    files = plan.files[index::num]
    if not files and not (index == 0 and plan.builtins):
        raise DataError(
            f"part {index} of {num} has no input: there are only {len(plan.files)} input files; "
            f"use --num-shards {max(1, len(plan.files))} or fewer"
        )
    return InputPlan(
        files=files,
        builtins=plan.builtins if index == 0 else [],
        unsupported=plan.unsupported,
        total_bytes=sum(f.stat().st_size for f in files),
        skipped=plan.skipped if index == 0 else [],
    )


def _fed_with_progress(texts: Iterator[str], total: int, quiet: bool) -> Iterator[str]:
    """`texts`, counted on a "tokenizer: read" bar that closes when the trainer has read
    all it takes (before the trainer's own merge bars start)."""
    with progress(total, "tokenizer: read", "B", quiet) as bar:
        for text in texts:
            bar.advance(len(text.encode("utf-8")))
            yield text


def _get_tokenizer(
    cfg: PrepareConfig, clean: CleanResult, split: SplitPlan, quiet: bool
) -> Tokenizer:
    if not cfg.trains_tokenizer:
        return load_tokenizer(cfg.tokenizer)
    train_texts = (
        piece
        for name, text in _split_texts(clean, split)
        if name == "train"
        for piece in encoding_pieces(text)
    )
    cap = train_bytes_for(cfg.tokenizer, cfg.tokenizer_train_bytes) or cfg.tokenizer_train_bytes
    total = min(cap, clean.spool.stat().st_size - 16 * clean.documents)
    return interruptible(  # Ctrl-C / SIGTERM act at once, not when the trainer returns
        train_tokenizer,
        cfg.tokenizer,
        _fed_with_progress(train_texts, total, quiet),
        cfg.vocab_size,
        max_bytes=cfg.tokenizer_train_bytes,
        show_progress=not quiet and sys.stderr.isatty(),
        threads=cfg.workers,
    )


def _pack_pass(
    cfg: PrepareConfig, clean: CleanResult, split: SplitPlan, tok: Tokenizer, out: Path,
    quiet: bool, save: Callable[[dict[str, Any]], None], at: dict[str, Any] | None,
) -> dict[str, dict]:  # fmt: skip
    """Pass 2: encode every document and write the train and val shards, from checkpoint
    state `at` (a "pack" phase) on when given; `save`s a state every `checkpoint_bytes`."""
    group = encode_group_chars(cfg.workers)  # memory with the cores that use it
    packer, at = open_packer(tok, out, cfg.shard_tokens, PARTIAL_INDEX_PREFIX, at, quiet, group)
    start = (at["records"], at["position"]) if at else (0, 0)
    total = clean.spool.stat().st_size - 16 * clean.documents  # minus record headers
    with progress(total, "tokenize + pack", "B", quiet) as bar:
        bar.advance(packer.bytes_added)
        packer.on_bytes = bar.advance
        records = _split_records(clean, split, *start)
        pack_records(packer, records, cfg.checkpoint_bytes, save, done=start[0])
        splits = packer.close()
    packer.state()  # the last shards durable before a checkpoint says they are complete
    return splits


def _use_workers(workers: int) -> None:
    """Size the Rust (rayon) thread pool that BPE training and encode_batch use.

    It reads RAYON_NUM_THREADS once, when first used; a value the user set wins.
    """
    if workers != (os.cpu_count() or 1):
        os.environ.setdefault("RAYON_NUM_THREADS", str(workers))


def _build_report(
    inputs: list[str | Path], cfg: PrepareConfig, clean: CleanResult, split: SplitPlan,
    tok: Tokenizer, splits: dict[str, dict], timings: dict[str, float],
) -> dict[str, Any]:  # fmt: skip
    figures = {
        name: split_figures({**counts, "shards": len(counts["shards"])})
        for name, counts in splits.items()
    }
    return {
        "inputs": [str(i) for i in inputs],
        "config": dataclasses.asdict(cfg),
        "steps": [{"name": step.name, **dict(sorted(step.stats.items()))} for step in clean.steps],
        "examples": {
            step.name: step.examples for step in clean.steps if getattr(step, "examples", None)
        },
        "bad_inputs": clean.problems.report(),
        "unsupported_files_ignored": dict(sorted(clean.plan.unsupported.items())),
        "documents_kept": clean.documents,
        "split": {"method": split.method, "val_fraction": cfg.val_fraction, "seed": cfg.seed},
        "tokenizer": {
            "type": tok.kind,
            **vocab_report(cfg.tokenizer, cfg.vocab_size, tok.vocab_size),
            "source": cfg.tokenizer,
            **({"model_type": tok.model_type} if hasattr(tok, "model_type") else {}),
            "train_bytes_cap": cfg.tokenizer_train_bytes if cfg.trains_tokenizer else None,
            "val_unk_tokens": splits["val"]["unk_tokens"],
        },
        "part": {"shard_index": cfg.shard_index, "num_shards": cfg.num_shards},
        "splits": figures,
        "compression": compression(figures),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }


def _flat_stats(report: dict[str, Any]) -> dict[str, Any]:
    steps = {s["name"]: s for s in report["steps"]}
    return {
        "files": steps["read"].get("files_read", 0),
        "bytes_read": steps["read"].get("bytes_read", 0),
        "documents_read": steps["read"].get("documents_read", 0),
        "bad_inputs_skipped": sum(report["bad_inputs"]["counts"].values()),
        "bytes_lost": report["bad_inputs"].get("lost_bytes", 0),
        "empty_removed": steps["min_length"].get("removed_empty", 0),
        "too_short_removed": steps["min_length"].get("removed_too_short", 0),
        "exact_duplicates_removed": steps["exact_dedup"].get("removed_exact_duplicate", 0),
        "near_duplicates_removed": steps.get("near_dedup", {}).get("removed_near_duplicate", 0),
        "quality_removed": sum(
            n
            for name in QUALITY_STEPS
            for key, n in steps.get(name, {}).items()
            if key.startswith("removed_")
        ),
        "pii_replaced": sum(
            n for key, n in steps.get("pii", {}).items() if key.startswith("replaced_")
        ),
        "documents_kept": report["documents_kept"],
        "val_bytes_per_token": report["compression"]["val_bytes_per_token"],
    }


def _build_manifest(
    cfg: PrepareConfig, tok: Tokenizer, out: Path, splits: dict[str, dict], report: dict[str, Any]
) -> dict[str, Any]:
    tokenizer = {
        "type": tok.kind,
        "vocab_size": tok.vocab_size,
        "sha256": tokenizer_sha256(out / TOKENIZER_DIR),
        "path": TOKENIZER_DIR,
        "pad_id": tok.pad_id,
        "unk_id": tok.unk_id,
        "bos_id": tok.bos_id,
        "eos_id": tok.eos_id,
        **({"model_type": tok.model_type} if hasattr(tok, "model_type") else {}),
    }
    return build_manifest(
        dtype=shard_dtype(tok.vocab_size), tokenizer=tokenizer, split=report["split"],
        splits=splits, stats=_flat_stats(report),
    )  # fmt: skip


def prepare_corpus(
    inputs: list[str | Path],
    out_dir: str | Path,
    cfg: PrepareConfig | None = None,
    *,
    overwrite: bool | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Prepare `inputs` (files, folders, "builtin:python") into DATA_DIR `out_dir`.

    Returns the manifest. `overwrite`, when given, replaces `cfg.overwrite`. Prints progress
    bars (on a terminal: read + clean, near-dedup, tokenizer, tokenize + pack) and a summary
    unless `quiet`.
    """
    cfg = cfg or PrepareConfig()
    if overwrite is not None:
        cfg = dataclasses.replace(cfg, overwrite=overwrite)
    cfg.validate()
    out = Path(out_dir)
    if cfg.resume and (out / MANIFEST_FILE).is_file():
        if not quiet:
            print(f"{out} is complete ({MANIFEST_FILE} exists): skipped (--resume)")
        return read_manifest(out)
    plan = plan_inputs(inputs, exclude=out, read_unknown=not cfg.ignore_unknown)
    plan = select_part(plan, cfg.shard_index, cfg.num_shards)
    fp = fingerprint(plan, cfg)
    state = load_checkpoint(out, fp) if cfg.resume else None
    if state is not None and state["phase"] == "clean":
        try:
            state = {**state, "clean": pick_state(state, out)}
        except CheckpointMismatch:
            state = None
    if state is None:
        prepare_output_dir(out, cfg.overwrite)
    elif not quiet:
        print(f"{out}: resuming from the last checkpoint (phase {state['phase']!r})")
    _use_workers(cfg.workers)
    try:
        clean, split, tok, splits, timings = _run_phases(plan, cfg, out, fp, state, quiet)
    except LLMTrainError:  # a user error: rerunning cannot help, so keep no checkpoint
        _remove_temporaries(out)
        raise
    report = _build_report(inputs, cfg, clean, split, tok, splits, timings)
    atomic_write_json(out / REPORT_FILE, report)
    write_report_html(report, out / REPORT_HTML, str(out))
    _remove_temporaries(out)
    manifest = _build_manifest(cfg, tok, out, splits, report)
    atomic_write_json(out / MANIFEST_FILE, manifest)  # last: its presence means complete
    if not quiet:
        print_summary(manifest, report, out)
    return manifest


def _run_phases(
    plan: InputPlan, cfg: PrepareConfig, out: Path, fp: str, state: dict[str, Any] | None,
    quiet: bool,
) -> tuple[CleanResult, SplitPlan, Tokenizer, dict[str, dict], dict[str, float]]:  # fmt: skip
    """Pass 1, tokenizer, pass 2 and the kept text, each skipped when `state` (a checkpoint)
    says it is done; temporaries stay on disk when this raises, for --resume."""
    phase = state["phase"] if state else None
    if phase in ("cleaned", "tokenizer", "pack", "packed"):
        clean = CleanResult.from_state(state["result"], out, plan)
    else:
        clean = clean_pass(plan, cfg, out, fp, quiet, state and state["clean"])
    if not clean.documents:
        raise DataError(_empty_corpus_message(clean))
    split = _plan_split(clean, cfg)
    timings = {"read_clean": clean.seconds}
    t0 = time.perf_counter()
    if phase in ("tokenizer", "pack", "packed"):
        tok = load_tokenizer(out / TOKENIZER_DIR)
        timings["tokenizer"] = state["tokenizer_s"]
    else:
        tok = _get_tokenizer(cfg, clean, split, quiet)
        release_free_memory()  # the trainer's freed heap, before pass 2 allocates its own
        tok.save(out / TOKENIZER_DIR)
        timings["tokenizer"] = time.perf_counter() - t0
        save_checkpoint(out, fp, "tokenizer", result=clean.state(),
                        tokenizer_s=timings["tokenizer"])  # fmt: skip
    done = {"result": clean.state(), "tokenizer_s": timings["tokenizer"]}
    if phase == "packed":
        splits, timings["tokenize_pack"] = state["splits"], state["tokenize_pack_s"]
    else:
        at = state["pack"] if phase == "pack" else None
        t0 = time.perf_counter() - (at["elapsed_s"] if at else 0.0)

        def save(pack: dict[str, Any]) -> None:
            pack["elapsed_s"] = time.perf_counter() - t0
            save_checkpoint(out, fp, "pack", **done, pack=pack)

        splits = _pack_pass(cfg, clean, split, tok, out, quiet, save, at)
        timings["tokenize_pack"] = time.perf_counter() - t0
        save_checkpoint(out, fp, "packed", **done, splits=splits,
                        tokenize_pack_s=timings["tokenize_pack"])  # fmt: skip
    if clean.kept is not None and clean.kept.exists():  # gone: finished before a crash
        finish_kept_text(clean.kept, out / KEPT_TEXT_FILE, _split_names(clean, split))
    return clean, split, tok, splits, timings
