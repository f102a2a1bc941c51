"""`prepare` at scale and for inspection: --keep-text, --dry-run, report.html, decontamination
with planted PIQA/ARC items, --workers determinism, --shard-index/--num-shards + --merge,
--resume, and the real SentencePiece backend through the seed script's flag."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llmtrain.cli.main import main
from llmtrain.data import open_split, read_manifest, verify_shards
from llmtrain.data.prepare import PrepareConfig, prepare_corpus
from llmtrain.data.prepare.dry_run import dry_run
from llmtrain.data.prepare.merge import merge_parts
from llmtrain.errors import ConfigError, DataError

from .test_prepare_pipeline import EN, ZH, make_corpus

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_corpus = pytest.mark.skipif(not SHARED.is_dir(), reason=f"no real corpora at {SHARED}")


def cfg(**kw) -> PrepareConfig:
    return PrepareConfig(**{"tokenizer": "bpe", "vocab_size": 300, "workers": 1, **kw})


def test_keep_text_html_report_and_examples(tmp_path):
    raw, out = make_corpus(tmp_path), tmp_path / "data"
    (raw / "ids.jsonl").write_text(json.dumps({"id": "doc-42", "text": "own id " + ZH}) + "\n")
    m = prepare_corpus([raw], out, cfg(keep_text=True, detect_language=True), quiet=True)
    rows = [json.loads(line) for line in (out / "documents.jsonl").open(encoding="utf-8")]
    assert len(rows) == m["splits"]["train"]["documents"] + m["splits"]["val"]["documents"]
    by_id = {r["id"]: r for r in rows}
    assert by_id["doc-42"]["text"] == "own id " + ZH  # the input's own id is kept
    assert any(r["id"].endswith("z.jsonl:1") for r in rows)  # else file:line
    assert {r["split"] for r in rows} == {"train", "val"}
    assert by_id["doc-42"]["annotations"]["language"] == "zh"
    assert sum(r["split"] == "val" for r in rows) == m["splits"]["val"]["documents"]
    report = json.loads((out / "report.json").read_text())
    dup = report["examples"]["exact_dedup"]["exact_duplicate"]
    assert dup[0]["text"].startswith(EN)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html and "exact_duplicate" in html and "Language mix" in html
    assert "bytes/token" in html and "&lt;" not in EN


def test_dry_run_writes_nothing_and_cli(tmp_path, capsys):
    raw = make_corpus(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*"))
    result = dry_run([raw], cfg(), sample=10, quiet=True)
    assert result["documents_sampled"] == 10
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert main(["prepare", str(raw), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "would keep 22 of 24" in printed and "exact_duplicate" in printed
    assert main(["prepare", str(raw), "--dry-run", "--quality", "web"]) == 0
    assert "would keep 0 of 24" in capsys.readouterr().out  # web filters drop repetitive snippets


@pytest.mark.corpus
@needs_corpus
def test_decontaminate_planted_piqa_and_arc(tmp_path):
    piqa = SHARED / "eval" / "piqa" / "valid.jsonl"
    arc = SHARED / "eval" / "arc" / "ARC-Easy-Dev.jsonl"
    item = json.loads(piqa.open().readline())
    # a stem of >= 13 words: shorter items count only whole (>= 8 words), see decontaminate.py
    q = next(q for q in (json.loads(x)["question"] for x in arc.open())
             if len(q["stem"].split()) >= 16)  # fmt: skip
    raw = tmp_path / "raw"
    raw.mkdir()
    shakespeare = (SHARED / "tinyshakespeare.txt").read_text(encoding="utf-8")
    clean = [shakespeare[i * 3000 : (i + 1) * 3000] for i in range(30)]
    planted = [
        clean[0][:1000] + " " + item["goal"] + " " + item["sol1"] + " " + clean[0][1000:2000],
        "Quiz night. " + q["stem"] + " " + " ".join(c["text"] for c in q["choices"]),
        ZH + "。" + item["sol2"].upper() + "!",  # case and punctuation do not hide a copy
    ]
    rows = [{"id": f"c{i}", "text": t} for i, t in enumerate(clean)]
    rows += [{"id": f"planted{i}", "text": t} for i, t in enumerate(planted)]
    (raw / "c.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    c = cfg(tokenizer="byte", decontaminate=[str(piqa), str(arc)], keep_text=True)
    m = prepare_corpus([raw], tmp_path / "d", c, quiet=True)
    step = next(s for s in json.loads((tmp_path / "d" / "report.json").read_text())["steps"]
                if s["name"] == "decontaminate")  # fmt: skip
    assert step["removed_contaminated"] == 3 and m["stats"]["documents_kept"] == 30
    flagged = prepare_corpus([raw], tmp_path / "f", cfg(**{**c.__dict__, "decontaminate_mode": "flag"}), quiet=True)  # fmt: skip
    assert flagged["stats"]["documents_kept"] == 33
    rows = [json.loads(x) for x in (tmp_path / "f" / "documents.jsonl").open()]
    assert {r["id"] for r in rows if "contaminated_ngrams" in r["annotations"]} == {
        "planted0", "planted1", "planted2"}  # fmt: skip


def _digest(out: Path) -> tuple:
    m = read_manifest(out)
    shards = [s["sha256"] for split in m["splits"].values() for s in split["shards"]]
    return m["tokenizer"]["sha256"], tuple(shards)


@pytest.mark.parametrize("kind", ["bpe", "sentencepiece"])
def test_workers_do_not_change_the_output(tmp_path, kind):
    raw = make_corpus(tmp_path)
    one = prepare_corpus([raw], tmp_path / "one", cfg(tokenizer=kind, vocab_size=320), quiet=True)
    # a fresh process: the Rust thread pool size is fixed once per process
    code = (
        "import sys; from llmtrain.data.prepare import PrepareConfig, prepare_corpus; "
        f"prepare_corpus([sys.argv[1]], sys.argv[2], PrepareConfig(tokenizer={kind!r}, "
        "vocab_size=320, workers=4), quiet=True)"
    )
    subprocess.run([sys.executable, "-c", code, str(raw), str(tmp_path / "four")], check=True)
    assert one["splits"]["train"]["tokens"] > 0
    assert _digest(tmp_path / "one") == _digest(tmp_path / "four")


def test_shards_of_work_merge_and_resume(tmp_path, capsys):
    raw = make_corpus(tmp_path)
    with pytest.raises(ConfigError, match="could not be merged"):
        cfg(num_shards=2).validate()
    whole = prepare_corpus([raw], tmp_path / "whole", cfg(tokenizer="byte"), quiet=True)
    parts = [tmp_path / f"part{i}" for i in range(3)]
    for i, part in enumerate(parts):
        prepare_corpus([raw], part, cfg(tokenizer="byte", shard_index=i, num_shards=3), quiet=True)
    with pytest.raises(DataError, match="not complete"):
        merge_parts([*parts, tmp_path / "missing"], tmp_path / "bad")
    merged = merge_parts(parts, tmp_path / "merged")
    verify_shards(tmp_path / "merged")
    # dedup runs within a part: dup.txt and en_00.txt landed in different parts (a part of 7
    # documents may be split contiguously: its cut document is then in both splits)
    assert merged["stats"]["documents_kept"] == whole["stats"]["documents_kept"] + 1 == 23
    tokens = sum(
        np.asarray(a).size for s in ("train", "val") for a in open_split(tmp_path / "merged", s)
    )
    parts_tokens = sum(
        read_manifest(p)["splits"][s]["tokens"] for p in parts for s in ("train", "val")
    )
    assert tokens == parts_tokens == sum(s["tokens"] for s in merged["splits"].values())
    report = json.loads((tmp_path / "merged" / "report.json").read_text())
    assert report["documents_kept"] == 23 and len(report["parts"]) == 3
    read = next(s for s in report["steps"] if s["name"] == "read")
    assert read["documents_read"] == sum(
        p["stats"]["documents_read"] for p in map(read_manifest, parts)
    )
    html = (tmp_path / "merged" / "report.html").read_text(encoding="utf-8")
    assert "merged from 3 parts" in html and "bytes/token" in html
    # --resume: a finished part is skipped (not refused, not redone)
    stamp = (parts[0] / "manifest.json").stat().st_mtime_ns
    assert main(["prepare", str(raw), "--out", str(parts[0]), "--tokenizer", "byte",
                 "--shard-index", "0", "--num-shards", "3", "--resume"]) == 0  # fmt: skip
    assert (parts[0] / "manifest.json").stat().st_mtime_ns == stamp
    assert "skipped" in capsys.readouterr().out
    assert main(["prepare", "--merge", *map(str, parts), "--out", str(tmp_path / "m2")]) == 0
    assert main(["prepare", str(raw), "--out", str(tmp_path / "x"), "--shard-index", "3",
                 "--num-shards", "3", "--tokenizer", "byte"]) == 2  # fmt: skip
    assert "shard_index = 3" in capsys.readouterr().err
