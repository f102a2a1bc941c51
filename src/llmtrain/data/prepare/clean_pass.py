"""Pass 1 of `prepare`: read → clean steps → spool, checkpointed; then near duplicates go.

`clean_pass` streams the documents through `clean_steps` into the spool (and, with
--keep-text, the kept-text file). After each `cfg.checkpoint_bytes` of input it makes the
spool, kept text, exact-dedup table and near-dedup files durable and records where it is
(`resume`); a rerun with --resume cuts the files back to that point and goes on from the
same reader position with the same counts, so its output is byte-identical. Near
duplicates are then dropped from the spool and the kept text together.

With `cfg.workers` > 1 the per-document steps before exact dedup run in a process pool
(`parallel.clean_batches`) and the rest in this process, in document order, so the output
is that of one worker; checkpoints then fall between batches and record where the reader
was after the batch (`ReadMark`), not where it is (it reads ahead).
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmtrain.data.prepare.config import PrepareConfig
from llmtrain.data.prepare.decontaminate import Decontaminate, EvalNgrams
from llmtrain.data.prepare.dedup import ExactDedup, committed_generation
from llmtrain.data.prepare.documents import Document, Problems, Step
from llmtrain.data.prepare.heap import release_free_memory
from llmtrain.data.prepare.keep_text import KeptTextWriter
from llmtrain.data.prepare.language import LanguageFilter, release_language_model
from llmtrain.data.prepare.minhash import NearDedup
from llmtrain.data.prepare.normalise import MinLength, Normalise
from llmtrain.data.prepare.parallel import ReadMark, clean_batches, parallel_prefix, use_pool
from llmtrain.data.prepare.pii import RedactPII
from llmtrain.data.prepare.quality import quality_steps
from llmtrain.data.prepare.readers import InputPlan, Reader, ReadPosition
from llmtrain.data.prepare.resume import save_checkpoint
from llmtrain.data.prepare.split import SplitRule, split_score
from llmtrain.data.prepare.spool import SpoolWriter, read_spool
from llmtrain.utils.progress import progress

SPOOL_FILE = ".prepare_spool.tmp"
KEPT_TMP = ".prepare_kept_text.tmp"
EXACT_DEDUP_DB = ".prepare_exact_dedup.tmp"
NEAR_DEDUP_DIR = ".prepare_near_dedup.tmp"
_WITHOUT_NEAR = ".kept"  # suffix of the spool / kept text rewritten without near duplicates


class CheckpointMismatch(Exception):
    """The exact-dedup table matches neither recorded state: start afresh."""


@dataclass
class StepCounts:
    """What a step counted (and the removed examples it kept), without the step itself."""

    name: str
    stats: Counter[str]
    examples: dict[str, list[dict[str, str]]]

    @classmethod
    def of(cls, step: Any) -> StepCounts:
        return cls(step.name, Counter(step.stats), getattr(step, "examples", {}))


@dataclass
class CleanResult:
    """What pass 1 left: the spool (and kept text), its document count and split rule, and
    every step's counts."""

    spool: Path
    kept: Path | None
    documents: int
    rule: SplitRule
    steps: list[StepCounts]
    problems: Problems
    plan: InputPlan
    seconds: float = 0.0  # time pass 1 took (summed over resumed runs)

    def state(self) -> dict[str, Any]:
        return {"spool": self.spool.name, "kept": self.kept and self.kept.name,
                "seconds": self.seconds,
                "rule": self.rule.state(), "problems": self.problems.state(),
                "steps": [{"name": s.name, "stats": dict(s.stats), "examples": s.examples}
                          for s in self.steps]}  # fmt: skip

    @classmethod
    def from_state(cls, state: dict[str, Any], out: Path, plan: InputPlan) -> CleanResult:
        problems = Problems(skip_bad=True)
        problems.restore(state["problems"])
        rule = SplitRule.from_state(state["rule"])
        steps = [StepCounts(s["name"], Counter(s["stats"]), s["examples"]) for s in state["steps"]]
        kept = out / state["kept"] if state["kept"] else None
        return cls(out / state["spool"], kept, rule.count, rule, steps, problems, plan,
                   state["seconds"])  # fmt: skip


def clean_steps(
    cfg: PrepareConfig, work_dir: Path, eval_ngrams: EvalNgrams | None = None,
    resume_docs: int | None = None,
) -> list[Step]:  # fmt: skip
    """The pass-1 steps `cfg` asks for, in order (near_dedup, when on, comes last).

    `resume_docs` (not None) reopens the dedup state on disk from a checkpoint that had
    indexed that many documents for near-dedup."""
    steps: list[Step] = [Normalise(cfg.fix_encoding)]
    if cfg.languages or cfg.detect_language:
        steps.append(LanguageFilter(cfg.languages, cfg.language_aliases))
    steps += quality_steps(cfg.quality, cfg.quality_set, cfg.zh_words)
    if cfg.pii:
        steps.append(RedactPII())
    resume = resume_docs is not None
    steps += [MinLength(cfg.min_chars), ExactDedup(work_dir / EXACT_DEDUP_DB, resume)]
    if cfg.decontaminate:
        ngrams = eval_ngrams or EvalNgrams.from_files(cfg.decontaminate, cfg.decontaminate_ngram)
        steps.append(Decontaminate(ngrams, flag_only=cfg.decontaminate_mode == "flag"))
    if cfg.near_dedup:
        steps.append(NearDedup(work_dir / NEAR_DEDUP_DIR, cfg.lsh, resume_docs=resume_docs or 0))
    return steps


class _Pass:
    """The running pass: reader, steps, writers and counters, checkpointed together."""

    def __init__(self, plan: InputPlan, cfg: PrepareConfig, out: Path, at: dict | None) -> None:
        self.cfg, self.out, self.at = cfg, out, at
        self.t0 = time.perf_counter() - (at["elapsed_s"] if at else 0.0)
        self.generation, self.last = (at["generation"], at) if at else (0, None)
        self.problems = Problems(cfg.skip_bad_files)
        self.rule = SplitRule.from_state(at["rule"]) if at else SplitRule(cfg.val_fraction)
        self.bytes_seen = at["bar_bytes"] if at else 0
        self.bar: Any = None
        start = ReadPosition(**at["reader"]) if at else None
        self.reader = Reader(plan, cfg.text_field, self.problems, self._on_bytes, start)
        self.steps = clean_steps(cfg, out, resume_docs=at and (at["near_docs"] or 0))
        if at:
            self.problems.restore(at["problems"])
            self.reader.stats = Counter(at["reader_stats"])
            for step, state in zip(self.steps, at["steps"]):
                step.restore(state)

    def _on_bytes(self, n: int) -> None:
        self.bytes_seen += n
        self.bar.advance(n)

    def documents(self) -> Iterator[Document]:
        docs: Iterator[Document] = iter(self.reader)
        for step in self.steps:
            docs = step(docs)
        return docs

    def batches(self) -> Iterator[tuple[Iterator[Document], ReadMark | None]]:
        """The cleaned documents: one stream (mark None: checkpoint anywhere, the reader is
        in step) or, with the pool, one stream per batch and the reader's mark after it."""
        head = parallel_prefix(self.steps)
        pooled = self.steps[:head]
        if not use_pool(pooled, self.cfg.workers, self.reader.plan.total_bytes):
            yield self.documents(), None
            return
        for batch in clean_batches(self.reader, self.problems, pooled, self.cfg.workers,
                                   lambda: self.bytes_seen):  # fmt: skip
            docs: Iterator[Document] = iter(batch.docs)
            for step in self.steps[head:]:
                docs = step(docs)
            yield docs, batch.mark

    def checkpoint(
        self, spool: SpoolWriter, kept: KeptTextWriter | None, fp: str,
        mark: ReadMark | None = None,
    ) -> None:  # fmt: skip
        """Flush every file, record the place, then commit the exact-dedup table.

        The table's commit (which carries the generation number) is the moment the
        checkpoint takes effect: the JSON keeps this state and the previous one, and a
        resume picks the one whose generation the table committed (`pick_state`). `mark`,
        when given, is where the reader was after the last document written (it reads ahead)."""
        near = self.steps[-1]
        self.generation += 1
        mark = mark or ReadMark.now(self.reader, self.problems, self.bytes_seen)
        state = {
            "generation": self.generation, "spool_bytes": spool.size(),
            "kept_bytes": kept.size() if kept else None,
            "reader": mark.position, "reader_stats": mark.reader_stats,
            "bar_bytes": mark.bytes_seen, "problems": mark.problems,
            "steps": [s.state() for s in self.steps],
            "rule": self.rule.state(), "elapsed_s": time.perf_counter() - self.t0,
            "near_docs": near.n_docs if isinstance(near, NearDedup) else None,
        }  # fmt: skip
        if isinstance(near, NearDedup):
            near.checkpoint(self.generation)
        save_checkpoint(self.out, fp, "clean", clean=state, previous=self.last)
        for step in self.steps:
            step.checkpoint(self.generation)
        self.last = state

    def run(self, fp: str, quiet: bool) -> None:
        cfg, at = self.cfg, self.at
        keep = (KeptTextWriter(self.out / KEPT_TMP, at and at["kept_bytes"])
                if cfg.keep_text else nullcontext())  # fmt: skip
        total = self.reader.plan.total_bytes
        with progress(total, "read + clean", "B", quiet) as self.bar:
            self.bar.advance(self.bytes_seen)
            try:
                spool = SpoolWriter(self.out / SPOOL_FILE, at and at["spool_bytes"])
                with spool, keep as kept:
                    due = self.bytes_seen + cfg.checkpoint_bytes
                    for docs, mark in self.batches():
                        for doc in docs:
                            score = split_score(doc.text, cfg.seed)
                            spool.write(score, doc.text)
                            self.rule.observe(score, len(doc.text), doc.part_of)
                            if kept is not None:
                                kept.write(doc)
                            if mark is None and self.bytes_seen >= due:
                                self.checkpoint(spool, kept, fp)
                                due = self.bytes_seen + cfg.checkpoint_bytes
                        if mark is not None and mark.bytes_seen >= due:  # all read up
                            self.checkpoint(spool, kept, fp, mark)  # to `mark` is written
                            due = mark.bytes_seen + cfg.checkpoint_bytes
                    self.checkpoint(spool, kept, fp)  # the reader is past the last input
            finally:
                for step in self.steps:  # files stay until the "cleaned" checkpoint
                    if not isinstance(step, NearDedup):  # (near-dedup's serve `finish` first)
                        step.close(remove=False)


def _drop_near_duplicates(near: NearDedup, result: CleanResult, quiet: bool) -> None:
    """Rewrite the spool and kept text without the documents `near` marked (in `result`)."""
    with progress(len(near.band_files), "near-dedup: cluster", "band", quiet) as bar:
        mask = near.finish(on_band=bar.advance)  # (it trims the heap after each band)
    rule, old = SplitRule(result.rule.val_fraction), result.rule
    unit = old.unit if old.one_unit else ""  # (what is left of one file is still one file)
    spool = result.spool.with_name(result.spool.name + _WITHOUT_NEAR)
    kept = result.kept and result.kept.with_name(result.kept.name + _WITHOUT_NEAR)
    lines = open(result.kept, "rb") if result.kept else nullcontext()  # noqa: SIM115
    keep = KeptTextWriter(kept) if kept else nullcontext()
    if not mask.any():
        return
    with SpoolWriter(spool) as writer, lines as src, keep as dst, progress(
        len(mask), "near-dedup: drop", "doc", quiet
    ) as bar:  # fmt: skip
        for i, (dup, (score, text)) in enumerate(zip(mask, read_spool(result.spool))):
            bar.advance()
            line = src.readline() if src else b""
            if not dup:
                writer.write(score, text)
                rule.observe(score, len(text), unit)
                if dst:
                    dst.write_line(line)
            else:  # `finish` took it off documents_out; its bytes come off here
                near.stats["bytes_out"] -= len(text.encode("utf-8"))
                near.add_example("near_duplicate", Document(text, f"kept document #{i}", ""))
    result.spool, result.kept, result.rule, result.documents = spool, kept, rule, rule.count


def clean_pass(
    plan: InputPlan, cfg: PrepareConfig, out: Path, fp: str, quiet: bool,
    at: dict[str, Any] | None = None,
) -> CleanResult:  # fmt: skip
    """Pass 1 from the start, or from checkpoint state `at` (a "clean" phase); the spool,
    kept text and counts of the survivors. Saves the "cleaned" checkpoint at the end."""
    run = _Pass(plan, cfg, out, at)
    run.run(fp, quiet)
    steps = [StepCounts.of(run.reader), *map(StepCounts.of, run.steps)]
    kept = out / KEPT_TMP if cfg.keep_text else None
    result = CleanResult(out / SPOOL_FILE, kept, run.rule.count, run.rule, steps, run.problems,
                         plan)  # fmt: skip
    near = run.steps[-1]
    if isinstance(near, NearDedup):
        _drop_near_duplicates(near, result, quiet)
        result.steps[-1] = StepCounts.of(near)
    result.seconds = time.perf_counter() - run.t0
    release_language_model()  # the tokenizer trainer comes next: leave it the memory
    release_free_memory()
    save_checkpoint(out, fp, "cleaned", result=result.state())
    # only now: a crash above resumes from the last "clean" checkpoint, which needs these
    for path in out.glob(EXACT_DEDUP_DB + "*"):
        path.unlink()
    if isinstance(near, NearDedup):
        near.close()
        shutil.rmtree(out / NEAR_DEDUP_DIR, ignore_errors=True)
        for old in (out / SPOOL_FILE, out / KEPT_TMP):
            if old not in (result.spool, result.kept):
                old.unlink(missing_ok=True)
    return result


def pick_state(checkpoint: dict[str, Any], out: Path) -> dict[str, Any]:
    """The "clean" state of `checkpoint` that the exact-dedup table committed: the latest,
    or the previous one when the process died between writing the JSON and committing."""
    committed = committed_generation(out / EXACT_DEDUP_DB)
    for state in (checkpoint["clean"], checkpoint.get("previous")):
        if state is not None and state["generation"] == committed:
            return state
    raise CheckpointMismatch(committed)
