"""Pass 1's per-document steps over a process pool, with the output of a single process.

The steps before exact dedup (Normalise, LanguageFilter, the quality filters, RedactPII,
MinLength) are pure functions of one document apart from their counts, so `clean_batches`
cuts the reader's documents into ordered batches, cleans each batch in a forked worker and
hands the survivors back in input order. A worker starts each batch with empty counts and
returns what it counted; the main process adds those deltas to its own step objects in
batch order, so totals, the first `EXAMPLES_PER_REASON` examples of each reason and
`Step.state()` are what one process would have. At most `2 * workers` batches are in
flight, which bounds memory. Each batch carries a `ReadMark`: the reader's position,
counts and problems right after its last document, so a checkpoint taken once the batch is
written describes exactly what was read (the reader itself is already further on).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from itertools import islice
from typing import Any

from llmtrain.data.prepare.documents import EXAMPLES_PER_REASON, Document, Problems, Step
from llmtrain.data.prepare.language import LanguageFilter
from llmtrain.data.prepare.normalise import MinLength, Normalise
from llmtrain.data.prepare.pii import RedactPII
from llmtrain.data.prepare.quality import ThresholdStep
from llmtrain.data.prepare.readers import Reader
from llmtrain.data.prepare.signals import ignore_in_worker
from llmtrain.errors import LLMTrainError

BATCH_DOCS = 256  # documents per batch, at most
BATCH_CHARS = 1 << 20  # characters per batch, at most (whole-file documents can be large)
IN_FLIGHT_PER_WORKER = 2  # batches queued or running per worker
# Below this much input the pool is used only when a step beyond Normalise / MinLength is
# on: forking and pickling cost more than those two cheap steps save on a small input.
POOL_MIN_BYTES = 8 << 20
_CHEAP = (Normalise, MinLength)
# steps whose `process` depends on nothing but the document (and set only counts)
PER_DOCUMENT = (Normalise, LanguageFilter, ThresholdStep, RedactPII, MinLength)

_STEPS: list[Step] = []  # the worker's copies of the steps (set by `_init_worker`)


def use_pool(steps: list[Step], workers: int, input_bytes: int) -> bool:
    """Whether cleaning `steps` over `input_bytes` of input pays for `workers` processes."""
    heavy = any(not isinstance(s, _CHEAP) for s in steps)
    return workers > 1 and bool(steps) and (heavy or input_bytes >= POOL_MIN_BYTES)


def parallel_prefix(steps: list[Step]) -> int:
    """How many leading `steps` are per-document (`PER_DOCUMENT`): those before exact dedup."""
    n = 0
    while n < len(steps) and isinstance(steps[n], PER_DOCUMENT):
        n += 1
    return n


@dataclass
class ReadMark:
    """The reader's state right after a batch's last document (JSON-ready)."""

    position: dict[str, Any]
    reader_stats: dict[str, int]
    problems: dict[str, Any]
    bytes_seen: int

    @classmethod
    def now(cls, reader: Reader, problems: Problems, bytes_seen: int) -> ReadMark:
        """Where `reader` is now; a copy, unchanged by what it reads next."""
        seen = problems.state()
        seen["items"] = list(seen["items"])  # the live list grows as reading goes on
        return cls(dataclasses.asdict(reader.position), dict(reader.stats), seen, bytes_seen)


@dataclass
class Batch:
    """Cleaned survivors of one batch, in input order, and where the reader was after it."""

    docs: list[Document]
    mark: ReadMark


Deltas = list[tuple[dict[str, int], dict[str, list[dict[str, str]]]]]


def _init_worker(steps: list[Step], parent: int) -> None:
    """Runs in each forked worker: keep the steps (inherited, not pickled), and exit when the
    parent is gone (a killed `prepare` must not leave workers waiting for batches)."""
    global _STEPS
    _STEPS = steps
    ignore_in_worker()  # the parent stops the pool on Ctrl-C / SIGTERM

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _clean(docs: list[Document]) -> tuple[list[Document], Deltas]:
    """Runs in a worker: `docs` through the steps; the survivors and each step's counts."""
    for step in _STEPS:
        step.stats, step.examples = Counter(), {}
    out: Any = iter(docs)
    for step in _STEPS:
        out = step(out)
    kept = list(out)
    for doc in kept:
        doc.cache.clear()  # token tables: large, and rebuilt where needed
    return kept, [(dict(s.stats), s.examples) for s in _STEPS]


def _merge(step: Step, stats: dict[str, int], examples: dict[str, list]) -> None:
    """Add one batch's counts to `step`; examples stay the first N of each reason."""
    step.stats.update(stats)
    for reason, items in examples.items():
        kept = step.examples.setdefault(reason, [])
        kept.extend(items[: EXAMPLES_PER_REASON - len(kept)])


def clean_batches(
    reader: Reader, problems: Problems, steps: list[Step], workers: int,
    bytes_seen: Callable[[], int],
) -> Iterator[Batch]:  # fmt: skip
    """The reader's documents through `steps` in `workers` forked processes, as ordered
    batches; `steps` (the main process's objects) end up holding the merged counts.
    `bytes_seen()` is the input read so far (recorded in each batch's mark)."""
    docs = iter(reader)
    context = multiprocessing.get_context("fork")
    pending: deque[tuple[Future, ReadMark]] = deque()
    with ProcessPoolExecutor(workers, context, initializer=_init_worker,
                             initargs=(steps, os.getpid())) as pool:  # fmt: skip
        more = True
        while True:
            while more and len(pending) < workers * IN_FLIGHT_PER_WORKER:
                batch = _take(docs)
                if not batch:
                    more = False
                    break
                mark = ReadMark.now(reader, problems, bytes_seen())
                pending.append((pool.submit(_clean, batch), mark))
            if not pending:
                return
            future, mark = pending.popleft()
            try:
                kept, deltas = future.result()
            except BrokenProcessPool as e:
                raise LLMTrainError(
                    f"a cleaning worker process died ({e}); the OS kills processes that run "
                    "out of memory: rerun with --resume to go on from the last checkpoint, "
                    f"with fewer --workers than {workers} if memory is short"
                ) from e
            for step, (stats, examples) in zip(steps, deltas):
                _merge(step, stats, examples)
            yield Batch(kept, mark)


def _take(docs: Iterator[Document]) -> list[Document]:
    """The next batch: up to BATCH_DOCS documents or BATCH_CHARS characters."""
    batch, chars = [], 0
    for doc in islice(docs, BATCH_DOCS):
        batch.append(doc)
        chars += len(doc.text)
        if chars >= BATCH_CHARS:
            break
    return batch
