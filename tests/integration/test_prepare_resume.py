"""`prepare --resume` inside one part: a process killed mid-way (no cleanup, unflushed
buffers) in pass 1 or while packing goes on from its last checkpoint, and the output is
byte-identical to a run that never stopped (shards, indexes, tokenizer, documents.jsonl,
report counts); the manifest comes last. A checkpoint that does not match never mixes."""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from llmtrain.data.prepare import PrepareConfig, prepare_corpus
from llmtrain.data.prepare import normalise as normalise_module
from llmtrain.data.prepare import pack as pack_module
from llmtrain.data.prepare.resume import CHECKPOINT_FILE

from .test_prepare_pipeline import EN, ZH

SETTINGS = {"tokenizer": "bpe", "vocab_size": 300, "workers": 1, "near_dedup": True,
            "keep_text": True, "checkpoint_bytes": 3000, "shard_tokens": 4000}  # fmt: skip
# Kill the process (os._exit: no finally, no flush) at the N-th call of a function (after
# the call returns for "closed": a shard's files written; "synced": a writer's state fsynced,
# its checkpoint not written; "report": the shards complete, documents.jsonl finished).
_CRASHER = """
import json, os, sys
from llmtrain.data import shards
from llmtrain.data.prepare import PrepareConfig, prepare_corpus, dedup, lsh, normalise, pack
from llmtrain.data.prepare import parallel, pipeline
parallel.BATCH_DOCS = 16  # many batches (and checkpoints between them) with --workers 2
where, after = sys.argv[4], int(sys.argv[5])
owner, name = {"clean": (normalise.Normalise, "process"),
               "exact": (dedup.ExactDedup, "process"), "cluster": (lsh.Components, "union"),
               "commit": (dedup.DigestSet, "checkpoint"), "pack": (pack.Packer, "flush"),
               "closed": (shards.ShardWriter, "_close"), "synced": (shards.ShardWriter, "state"),
               "report": (pipeline, "write_report_html")}[where]
original, calls = getattr(owner, name), [0]
def crashing(*args, **kw):
    calls[0] += 1
    if calls[0] > after and where not in ("closed", "synced"):
        os._exit(3)
    result = original(*args, **kw)
    if calls[0] > after:
        os._exit(3)
    return result
setattr(owner, name, crashing)
prepare_corpus([sys.argv[1]], sys.argv[2], PrepareConfig(**json.loads(sys.argv[3])), quiet=True)
"""


def _corpus(root: Path) -> Path:
    """JSONL (plain and gzip) with exact and near duplicates, a text file, a CSV, Chinese."""
    rng = random.Random(0)
    words = (EN + " " + " ".join(ZH)).split()
    raw = root / "raw"
    raw.mkdir()
    rows = []
    for i in range(240):
        text = " ".join(rng.choice(words) for _ in range(40)) + f" doc{i}"
        rows.append({"id": f"d{i}", "text": text})
        if i % 10 == 0:
            rows.append({"id": f"dup{i}", "text": text})  # exact duplicate
        if i % 7 == 0:
            rows.append({"id": f"near{i}", "text": text.replace(text.split()[3], "edited", 1)})
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    (raw / "a.jsonl").write_text("\n".join(lines[:200]) + "\n", encoding="utf-8")
    with gzip.open(raw / "b.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(lines[200:]) + "\n")
    (raw / "c.txt").write_text((ZH + "\n") * 8, encoding="utf-8")
    (raw / "d.csv").write_text("text\n" + "".join(f"row {i} {EN}\n" for i in range(30)))
    return raw


def _outputs(out: Path) -> dict[str, object]:
    """Everything that must not change: file bytes (but the report's timings) and counts."""
    files = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
             if p.is_file() and p.name not in ("manifest.json", "report.json", "report.html")}  # fmt: skip
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    del report["timings_s"], report["config"]["resume"], manifest["created"]
    return {"files": files, "report": report, "manifest": manifest}


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    root = tmp_path_factory.mktemp("whole")
    raw = _corpus(root)
    prepare_corpus([raw], root / "out", PrepareConfig(**SETTINGS), quiet=True)
    return raw, _outputs(root / "out")


@pytest.mark.parametrize(
    "where,after",  # inside plain JSONL, gzip JSONL, CSV; between a checkpoint's JSON and
    # its commit; clustering; packing
    [("clean", 150), ("clean", 250), ("clean", 310), ("commit", 5), ("cluster", 3), ("pack", 0)],
)
def test_killed_run_resumes_to_identical_output(tmp_path, whole, monkeypatch, where, after):
    raw, expected = whole
    out = tmp_path / "out"
    code = subprocess.run([sys.executable, "-c", _CRASHER, str(raw), str(out),
                           json.dumps(SETTINGS), where, str(after)]).returncode  # fmt: skip
    assert code == 3  # killed where asked
    assert not (out / "manifest.json").exists() and (out / CHECKPOINT_FILE).is_file()
    checkpoint = json.loads((out / CHECKPOINT_FILE).read_text())
    assert checkpoint["phase"] == {"pack": "tokenizer"}.get(where, "clean")
    if where == "commit":  # the JSON is one generation ahead of the table's last commit
        assert checkpoint["clean"]["generation"] == after + 1

    normalised = []  # documents the resumed run cleans again
    original = normalise_module.Normalise.process
    monkeypatch.setattr(normalise_module.Normalise, "process",
                        lambda self, doc: normalised.append(1) or original(self, doc))  # fmt: skip
    prepare_corpus([raw], out, PrepareConfig(**SETTINGS, resume=True), quiet=True)
    assert _outputs(out) == expected
    read = expected["manifest"]["stats"]["documents_read"]
    if where == "clean":  # from the last checkpoint (every ~3000 B: a dozen documents) on
        assert read - after <= len(normalised) < read - after + 40
    elif where == "commit":  # from the 5th checkpoint, whose commit was the last to land
        assert 0 < len(normalised) < read - 40
    else:  # pass 1 is not redone
        assert not normalised
    assert not [p.name for p in out.iterdir() if p.name.startswith(".prepare_")]


@pytest.mark.parametrize("where,after", [("clean", 300), ("closed", 3)])
def test_resume_ignores_a_checkpoint_of_other_settings(tmp_path, whole, where, after):
    raw, expected = whole
    out = tmp_path / "out"
    settings = json.dumps({**SETTINGS, "seed": 7})  # another split: other shards
    subprocess.run([sys.executable, "-c", _CRASHER, str(raw), str(out), settings, where,
                    str(after)], check=False)  # fmt: skip
    phase = json.loads((out / CHECKPOINT_FILE).read_text())["phase"]
    assert phase == {"clean": "clean", "closed": "pack"}[where]
    prepare_corpus([raw], out, PrepareConfig(**SETTINGS, resume=True), quiet=True)
    assert _outputs(out) == expected  # started afresh with the settings given now


def _crash(raw: Path, out: Path, settings: dict, where: str, after: int) -> dict:
    """Run prepare in a child killed at (`where`, `after`); its checkpoint. The child gets a
    fresh RAYON_NUM_THREADS, so its `workers` really sizes the encoder's thread pool."""
    env = {k: v for k, v in os.environ.items() if k != "RAYON_NUM_THREADS"}
    code = subprocess.run([sys.executable, "-c", _CRASHER, str(raw), str(out),
                           json.dumps(settings), where, str(after)], env=env).returncode  # fmt: skip
    assert code == 3  # killed where asked
    assert not (out / "manifest.json").exists()
    return json.loads((out / CHECKPOINT_FILE).read_text())


def _count_encoded(monkeypatch) -> list[int]:
    """Documents the (in-process) resumed run encodes, appended to the returned list."""
    encoded, original = [], pack_module.encode_documents
    monkeypatch.setattr(pack_module, "encode_documents",
                        lambda tok, texts, **kw: encoded.append(len(texts)) or original(tok, texts, **kw))  # fmt: skip
    return encoded


def _on_disk_tokens(out: Path) -> int:
    return sum(p.stat().st_size for p in out.glob("*/shard_*.bin")) // 2  # uint16


def _recorded_tokens(pack_state: dict) -> int:
    return sum(sum(s["tokens"] for s in w["shards"]) + (w["open"] or {"tokens": 0})["tokens"]
               for w in pack_state["writers"].values())  # fmt: skip


@pytest.mark.parametrize(
    "where,after,phase",  # at the 5th checkpoint's flush; right after the 4th shard closed;
    # after both writers of the 6th checkpoint fsynced, before its JSON; after the last
    # shard and the "packed" checkpoint (documents.jsonl done, report.html not)
    [("pack", 4, "pack"), ("closed", 3, "pack"), ("synced", 11, "pack"),
     ("report", 0, "packed")],
)  # fmt: skip
def test_killed_packing_resumes_to_identical_output(tmp_path, whole, monkeypatch, where, after,
                                                    phase):  # fmt: skip
    raw, expected = whole
    out = tmp_path / "out"
    checkpoint = _crash(raw, out, {**SETTINGS, "workers": 2}, where, after)  # 2 encode threads
    assert checkpoint["phase"] == phase
    documents = sum(expected["manifest"]["splits"][s]["documents"] for s in ("train", "val"))
    if phase == "pack":
        done = checkpoint["pack"]["records"]
        assert 0 < done < documents
        if where in ("closed", "synced"):  # the shards hold bytes no checkpoint describes
            assert _on_disk_tokens(out) > _recorded_tokens(checkpoint["pack"])
    else:
        done = documents
        assert not (out / ".prepare_kept_text.tmp").exists()  # documents.jsonl was finished

    encoded = _count_encoded(monkeypatch)
    prepare_corpus([raw], out, PrepareConfig(**SETTINGS, resume=True), quiet=True)
    assert _outputs(out) == expected
    assert sum(encoded) == documents - done  # from the checkpoint on, each document once
    assert not [p.name for p in out.iterdir() if p.name.startswith(".prepare_")]


@pytest.mark.parametrize("damage", ["shard bytes", "writer state"])
def test_packing_checkpoint_that_does_not_match_the_shards_packs_again(
    tmp_path, whole, monkeypatch, capsys, damage
):
    """An altered open shard or an unreadable writer state: packing restarts from the first
    document over emptied split folders (the tokenizer and pass 1 are kept)."""
    raw, expected = whole
    out = tmp_path / "out"
    checkpoint = _crash(raw, out, SETTINGS, "closed", 3)
    if damage == "shard bytes":
        open_shard = len(checkpoint["pack"]["writers"]["train"]["shards"])
        path = out / f"train/shard_{open_shard:05d}.bin"
        path.write_bytes(b"\x07\x00" + path.read_bytes()[2:])
    else:
        del checkpoint["pack"]["writers"]["val"]["open"]
        (out / CHECKPOINT_FILE).write_text(json.dumps(checkpoint))
    encoded = _count_encoded(monkeypatch)
    prepare_corpus([raw], out, PrepareConfig(**SETTINGS, resume=True), quiet=False)
    assert "packing again from the first document" in capsys.readouterr().out
    assert _outputs(out) == expected
    documents = sum(expected["manifest"]["splits"][s]["documents"] for s in ("train", "val"))
    assert sum(encoded) == documents


@pytest.mark.parametrize("resume_workers", [2, 1])
def test_killed_pooled_clean_pass_resumes_to_identical_output(tmp_path, resume_workers):
    """Pass 1 in a pool of 2 (pii on, so the pool is used) killed in the main process while
    the workers are batches ahead of what was written: the checkpoint holds the reader's
    place after the last written batch, so a resume (with 2 workers or 1) matches one
    uninterrupted single-process run."""
    raw = _corpus(tmp_path)
    settings = {**SETTINGS, "pii": True}
    prepare_corpus([raw], tmp_path / "whole", PrepareConfig(**settings), quiet=True)
    expected = _outputs(tmp_path / "whole")
    out = tmp_path / "out"
    checkpoint = _crash(raw, out, {**settings, "workers": 2}, "exact", 200)
    assert checkpoint["phase"] == "clean" and checkpoint["clean"]["generation"] >= 2
    normalised = checkpoint["clean"]["steps"][0]["stats"]["documents_in"]
    assert 0 < normalised <= 200  # of the written batches only, not those in flight
    assert checkpoint["clean"]["reader_stats"]["documents_read"] == normalised
    cfg = PrepareConfig(**{**settings, "workers": resume_workers, "resume": True})
    prepare_corpus([raw], out, cfg, quiet=True)
    got = _outputs(out)
    for report in (got["report"], expected["report"]):
        del report["config"]["workers"]
    assert got == expected
    assert not [p.name for p in out.iterdir() if p.name.startswith(".prepare_")]
