"""`prepare_corpus` and `llmtrain prepare` end to end on tiny generated corpora: outputs and
manifest, determinism, output-directory hygiene, and clear failures that leave no manifest."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llmtrain.cli.main import main
from llmtrain.data import open_split, read_manifest, verify_shards
from llmtrain.data.prepare import PrepareConfig, parallel, prepare_corpus
from llmtrain.data.prepare import normalise as normalise_module
from llmtrain.errors import ConfigError, DataError
from llmtrain.tokenizer import load_tokenizer

REPO = Path(__file__).resolve().parents[2]
EN = "the model reads text and learns to predict the next token from what came before"
ZH = "语言模型从大量文本中学习预测下一个字符训练需要数据和耐心"


def make_corpus(root: Path) -> Path:
    raw = root / "raw"
    (raw / "zh").mkdir(parents=True)
    for i in range(12):
        (raw / f"en_{i:02d}.txt").write_text(f"{EN} {i}.\n" * 5, encoding="utf-8")
    (raw / "dup.txt").write_text(f"{EN} 0.\n" * 5, encoding="utf-8")  # duplicate of en_00
    (raw / "blank.md").write_text("  \n\n", encoding="utf-8")
    rows = [{"text": ZH[i:] + ZH[:i]} for i in range(10)]
    (raw / "zh" / "z.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8"
    )
    return raw


def cfg(**kw) -> PrepareConfig:
    return PrepareConfig(**{"tokenizer": "bpe", "vocab_size": 300, "workers": 1, **kw})


EN_WORDS = (f"{EN} a river runs through the old town where people walk with their dogs in the "
            "morning and that have been to market for bread cheese and fresh fruit").split()  # fmt: skip
_ZH_TEXT = (ZH + "这是我们在城市里的生活他们在河边散步了很久今天的天气很好也有一点风学生们为了考试"
            "都在图书馆学习老师说明天会有新的课程我们一起去看看吧")  # fmt: skip
ZH_WORDS = [_ZH_TEXT[i : i + 2] for i in range(0, len(_ZH_TEXT) - 1, 2)]


def make_web_corpus(root: Path, n: int = 160) -> Path:
    """English and Chinese documents of several lines for --quality web: some repetitive
    (dropped by the filters), some with an e-mail address and phone number (redacted),
    exact and near duplicates."""
    rng = random.Random(1)
    rows = []
    for i in range(n):
        if i % 2:
            lines = ["".join(rng.choice(ZH_WORDS) for _ in range(16)) + "。" for _ in range(6)]
        else:
            lines = [" ".join(rng.choice(EN_WORDS) for _ in range(14)).capitalize() + "."
                     for _ in range(6)]  # fmt: skip
        if i % 9 == 0:
            lines.append(f"Write to person{i}@example.com or call +1 415-555-{1000 + i}.")
        if i % 13 == 0:
            lines = ["buy now"] * 30
        text = "\n".join(lines)
        rows.append({"id": f"d{i}", "text": text})
        if i % 10 == 0:
            rows.append({"id": f"dup{i}", "text": text})
        if i % 7 == 0:
            rows.append({"id": f"near{i}", "text": text.replace(" ", "  ", 1) + " x"})
    raw = root / "raw"
    raw.mkdir()
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    (raw / "a.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return raw


def test_prepare_writes_the_documented_format(tmp_path):
    raw, out = make_corpus(tmp_path), tmp_path / "data"
    manifest = prepare_corpus([raw], out, cfg(), quiet=True)
    assert manifest == read_manifest(out)
    assert manifest["dtype"] == "uint16" and manifest["split"]["method"] == "document"
    stats = manifest["stats"]
    assert (stats["files"], stats["documents_read"]) == (15, 24)
    assert stats["exact_duplicates_removed"] == 1 and stats["empty_removed"] == 1
    train, val = manifest["splits"]["train"], manifest["splits"]["val"]
    assert train["documents"] + val["documents"] == 22 and val["documents"] >= 1
    verify_shards(out)
    tok = load_tokenizer(out / "tokenizer")
    ids = np.concatenate([np.asarray(m) for m in open_split(out, "train")])
    assert ids.size == train["tokens"] and (ids == tok.eos_id).sum() == train["documents"]
    offsets = np.load(out / train["shards"][0]["index"]).tolist() + [ids.size]
    expected = {f"{EN} {i}.\n" * 5 for i in range(12)} | {ZH[i:] + ZH[:i] for i in range(10)}
    for start, end in zip(offsets, offsets[1:]):
        assert ids[end - 1] == tok.eos_id
        assert tok.decode(ids[start : end - 1].tolist()) in expected
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [s["name"] for s in report["steps"]] == [
        "read",
        "normalise",
        "min_length",
        "exact_dedup",
    ]
    assert report["compression"]["val_bytes_per_token"] > 1.0
    assert not (out / ".prepare_spool.tmp").exists()


def test_prepare_is_deterministic(tmp_path):
    raw = make_corpus(tmp_path)
    a = prepare_corpus([raw], tmp_path / "a", cfg(), quiet=True)
    b = prepare_corpus([raw], tmp_path / "b", cfg(), quiet=True)
    for split in ("train", "val"):
        assert [s["sha256"] for s in a["splits"][split]["shards"]] == [
            s["sha256"] for s in b["splits"][split]["shards"]
        ]
    assert a["tokenizer"]["sha256"] == b["tokenizer"]["sha256"]


def test_single_document_is_split_contiguously(tmp_path):
    path = tmp_path / "book.txt"
    lines = [f"line {i} 行{i}\n" for i in range(200)]
    path.write_text("".join(lines), encoding="utf-8")
    m = prepare_corpus([path], tmp_path / "d", cfg(tokenizer="char"), quiet=True)
    assert m["split"]["method"] == "contiguous"
    tok = load_tokenizer(tmp_path / "d" / "tokenizer")
    train, val = (np.asarray(open_split(tmp_path / "d", s)[0]).tolist() for s in ("train", "val"))
    text = tok.decode(train[:-1]) + tok.decode(val[:-1])
    assert text == "".join(lines)
    assert tok.decode(val[:-1]).startswith("line ") and 0.08 < len(val) / len(train + val) < 0.12


def test_existing_manifest_refused_then_overwritten(tmp_path):
    raw, out = make_corpus(tmp_path), tmp_path / "data"
    prepare_corpus([raw], out, cfg(), quiet=True)
    with pytest.raises(DataError, match="already holds prepared data.*--overwrite"):
        prepare_corpus([raw], out, cfg(), quiet=True)
    m = prepare_corpus([raw], out, cfg(tokenizer="byte"), overwrite=True, quiet=True)
    assert m["tokenizer"]["type"] == "byte" and read_manifest(out)["tokenizer"]["vocab_size"] == 260


def test_foreign_folders_in_out_dir_are_never_deleted(tmp_path):
    raw, out = make_corpus(tmp_path), tmp_path / "project"
    (out / "train").mkdir(parents=True)
    (out / "train" / "trainer.py").write_text("# someone's code")
    with pytest.raises(DataError, match="which llmtrain prepare did not write"):
        prepare_corpus([raw], out, cfg(), quiet=True)
    assert (out / "train" / "trainer.py").exists()


def test_existing_tokenizer_is_reused(tmp_path):
    raw = make_corpus(tmp_path)
    first = prepare_corpus([raw], tmp_path / "a", cfg(), quiet=True)
    again = prepare_corpus([raw], tmp_path / "b", cfg(tokenizer=str(tmp_path / "a" / "tokenizer")), quiet=True)  # fmt: skip
    assert again["tokenizer"]["sha256"] == first["tokenizer"]["sha256"]


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"\xff\xfe\x00bad", "bad.txt", "UTF-16"),
        ("中文".encode("gbk") + b" tail", "gbk.txt", "invalid UTF-8 at byte offset 0"),
        (b"\x00\x01\x02\x03" * 100, "bin.txt", "binary file"),
        (b'{"text": "ok"}\n{"text": \n', "d.jsonl", r"d\.jsonl:2: malformed JSON"),
        (b'{"body": "x"}\n', "d.jsonl", "no text field 'text' \\(keys present: 'body'\\)"),
        (b"  \n\n", "empty.txt", "the corpus is empty"),
    ],
)
def test_failures_are_clear_and_leave_no_manifest(tmp_path, content, name, message):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / name).write_bytes(content)
    out = tmp_path / "data"
    with pytest.raises(DataError, match=message):
        prepare_corpus([tmp_path / "raw"], out, cfg(), quiet=True)
    assert not (out / "manifest.json").exists() and not (out / ".prepare_spool.tmp").exists()


def test_skip_bad_files_records_them(tmp_path):
    raw = make_corpus(tmp_path)
    (raw / "gbk.txt").write_bytes("中文".encode("gbk"))
    m = prepare_corpus([raw], tmp_path / "d", cfg(skip_bad_files=True), quiet=True)
    report = json.loads((tmp_path / "d" / "report.json").read_text(encoding="utf-8"))
    assert m["stats"]["bad_inputs_skipped"] == 1
    assert report["bad_inputs"]["items"][0]["where"].endswith("gbk.txt")


def test_config_validation_names_value_and_fix():
    with pytest.raises(ConfigError, match="val_fraction = 0.9 must be in"):
        cfg(val_fraction=0.9).validate()
    with pytest.raises(ConfigError, match="'nope' is neither a kind"):
        cfg(tokenizer="nope").validate()
    with pytest.raises(ConfigError, match="vocab_size = 50 .* at least 260"):
        cfg(vocab_size=50).validate()


def test_cli_prepare_exit_codes(tmp_path, capsys):
    raw = make_corpus(tmp_path)
    args = ["prepare", str(raw), "--out", str(tmp_path / "d"), "--tokenizer", "char"]
    assert main([*args, "--val-fraction", "0.2", "--workers", "1"]) == 0
    assert "documents kept" in capsys.readouterr().out
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["prepare", str(tmp_path / "missing"), "--out", str(tmp_path / "e")]) == 2
    assert "input path not found" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--vocab-size", "10", "--tokenizer", "bpe"]) == 2


def test_seed_script_verbatim_flags(tmp_path):
    raw = make_corpus(tmp_path)
    cmd = [sys.executable, "scripts/prepare_corpus.py", "--input_dir", f"{raw}/",
           "--output_dir", f"{tmp_path / 'processed'}/", "--vocab_size", "500",
           "--tokenizer_type", "sentencepiece"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    tok = read_manifest(tmp_path / "processed")["tokenizer"]
    assert (tok["type"], tok["model_type"]) == ("sentencepiece", "unigram")  # a real SPM model
    assert (tmp_path / "processed" / "tokenizer" / "sentencepiece.model").is_file()
    assert (
        load_tokenizer(tmp_path / "processed" / "tokenizer").decode(
            load_tokenizer(tmp_path / "processed" / "tokenizer").encode(ZH + " " + EN)
        )
        == ZH + " " + EN
    )


def _everything(out: Path) -> tuple[dict[str, bytes], dict]:
    """Every output file's bytes (but the report's), and the report without timings/workers."""
    files = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
             if p.is_file() and p.name not in ("manifest.json", "report.json", "report.html")}  # fmt: skip
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    del report["timings_s"], report["config"]["workers"]
    return files, report


def test_workers_clean_in_a_pool_with_the_output_of_one(tmp_path, monkeypatch):
    """Pass 1 in 2 processes, in batches of 7 documents (so examples and counts merge
    across many batches): the same shards, documents.jsonl and report as 1 process."""
    raw = make_web_corpus(tmp_path)
    calls = []  # Normalise.process calls in this process (a forked worker's are its own)
    original = normalise_module.Normalise.process
    monkeypatch.setattr(normalise_module.Normalise, "process",
                        lambda self, doc: calls.append(1) or original(self, doc))  # fmt: skip
    monkeypatch.setattr(parallel, "BATCH_DOCS", 7)
    settings = {"tokenizer": "byte", "quality": "web", "pii": True, "near_dedup": True,
                "detect_language": True, "keep_text": True, "checkpoint_bytes": 2000}  # fmt: skip
    one = prepare_corpus([raw], tmp_path / "one", cfg(**settings), quiet=True)
    assert len(calls) == one["stats"]["documents_read"]
    calls.clear()
    two = prepare_corpus([raw], tmp_path / "two", cfg(**settings, workers=2), quiet=True)
    assert not calls  # the pool normalised every document
    files, report = _everything(tmp_path / "one")
    files_two, report_two = _everything(tmp_path / "two")
    assert files == files_two and one["stats"] == two["stats"]
    assert json.dumps(report, ensure_ascii=False) == json.dumps(report_two, ensure_ascii=False)
    stats = one["stats"]
    assert stats["quality_removed"] > 0 and stats["pii_replaced"] > 0
    assert stats["near_duplicates_removed"] > 0 and stats["exact_duplicates_removed"] > 0
    rows = [json.loads(x) for x in (tmp_path / "one" / "documents.jsonl").open(encoding="utf-8")]
    assert {r["annotations"]["language"] for r in rows} == {"en", "zh"}
    step = next(s for s in report["steps"] if s["name"] == "gopher_repetition")
    assert step["removed_dup_line_frac"] > 3  # in many batches: the first 3 are the examples
    assert len(report["examples"]["gopher_repetition"]["dup_line_frac"]) == 3


def test_pool_only_when_it_pays(monkeypatch):
    from llmtrain.data.prepare.normalise import MinLength, Normalise
    from llmtrain.data.prepare.pii import RedactPII

    cheap, heavy = [Normalise(), MinLength(1)], [Normalise(), RedactPII(), MinLength(1)]
    assert parallel.use_pool(heavy, 2, 10) and not parallel.use_pool(heavy, 1, 1 << 40)
    assert not parallel.use_pool(cheap, 2, 10)
    monkeypatch.setattr(parallel, "POOL_MIN_BYTES", 10)
    assert parallel.use_pool(cheap, 2, 10)


def test_a_dead_cleaning_worker_is_a_clear_error(tmp_path, monkeypatch):
    """A worker killed mid-run (as the OOM killer would) ends the run with an llmtrain error
    that names --resume and --workers, not a BrokenProcessPool traceback."""
    import os

    from llmtrain.errors import LLMTrainError

    raw = make_web_corpus(tmp_path, n=40)
    parent = os.getpid()
    original = normalise_module.Normalise.process

    def die_in_a_worker(self, doc):
        if os.getpid() != parent:
            os._exit(9)
        return original(self, doc)

    monkeypatch.setattr(normalise_module.Normalise, "process", die_in_a_worker)
    with pytest.raises(LLMTrainError, match=r"worker process died.*--resume.*--workers"):
        prepare_corpus([raw], tmp_path / "out", cfg(tokenizer="byte", pii=True, workers=2),
                       quiet=True)  # fmt: skip
    assert not (tmp_path / "out" / "manifest.json").exists()
