"""`llmtrain prepare` end to end on hostile folders (cases from the reader fuzz corpus): exit 0
with --skip-bad-files and every loss on the console, in report.json and report.html with
`documents read = kept + removed`; one clear line without it; encoding advice that fits the
file; SIGTERM stops like Ctrl-C and --resume finishes; Ctrl-C during tokenizer training acts
within about a second."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit.data import fuzz_cases as fc

HOSTILE = ("csv_extra_fields", "jsonl_deep", "jsonl_surrogate", "txt_gbk", "txt_zst_is_gzip",
           "csv_unclosed_quote", "warc_gz_cut", "parquet_ints", "html_binary", "zip_member_gbk",
           "unknown_ext_text", "bad_file_name", "fifo", "symlinks", "hidden_files")  # fmt: skip
GOOD = "The quick brown fox jumps over the lazy dog. 敏捷的棕色狐狸跳过了懒狗。\n" * 20


def _cli(*args: str, env_extra: dict | None = None, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
           **(env_extra or {})}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "llmtrain.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=120, **kw)  # fmt: skip


def _hostile_folder(root: Path) -> Path:
    raw = root / "raw"
    by_name = {c.name: c for c in fc.CASES}
    for name in HOSTILE:
        sub = raw / name
        sub.mkdir(parents=True)
        by_name[name].build(sub)
    (raw / "good.txt").write_text(GOOD, encoding="utf-8")
    return raw


def _accounting(report: dict) -> tuple[int, int]:
    """(documents read, documents kept + removed by every step)."""
    steps = {s["name"]: s for s in report["steps"]}
    removed = sum(n for s in report["steps"] for k, n in s.items() if k.startswith("removed_"))
    return steps["read"]["documents_read"], report["documents_kept"] + removed


@pytest.mark.timeout(120)
def test_hostile_folder_is_read_with_every_loss_reported(tmp_path):
    raw = _hostile_folder(tmp_path)
    out = tmp_path / "out"
    args = ["prepare", str(raw), "--out", str(out), "--tokenizer", "char", "--keep-text"]
    stopped = _cli(*args)
    assert stopped.returncode == 2 and "Traceback" not in stopped.stderr
    assert stopped.stderr.count("\n") == 1 and "--skip-bad-files" in stopped.stderr
    done = _cli(*args, "--skip-bad-files", "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "bad inputs skipped" in done.stdout and "a.csv:2: line 2 has 3 fields" in done.stdout
    assert "files not read" in done.stdout and "of unknown type, read as text" in done.stdout
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    read, accounted = _accounting(report)
    assert read == accounted and read >= 10
    bad = report["bad_inputs"]
    assert bad["lost_bytes"] > 0 and any("csv_extra_fields" in f for f in bad["lost_bytes_by_file"])
    kinds = set(bad["counts"])
    assert {"csv_field_count", "malformed_json_line", "invalid_unicode_escape",
            "invalid_utf8_file", "not_compressed", "csv_unclosed_quote", "truncated_record",
            "text_field_not_string", "binary_file", "not_regular_file", "broken_symlink",
            "symlink_loop"} <= kinds  # fmt: skip
    assert "Lost bytes per file" in (out / "report.html").read_text(encoding="utf-8")
    kept = [json.loads(line) for line in (out / "documents.jsonl").open(encoding="utf-8")]
    assert any("caf\\xe9" in k["source"] for k in kept)  # a name that is not UTF-8, escaped
    assert json.loads((out / "manifest.json").read_text())["stats"]["bytes_lost"] > 0


def test_latin1_advice_is_not_gb18030(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(
        "Café crème brûlée à la façade; naïve garçon déjà vu.\n".encode("latin-1") * 20
    )
    result = _cli("prepare", str(path), "--out", str(tmp_path / "o"), "--tokenizer", "char")
    assert result.returncode == 2 and "GB18030" not in result.stderr
    assert "ISO-8859-1" in result.stderr or "CP1252" in result.stderr, result.stderr
    gbk = tmp_path / "zh.txt"
    gbk.write_bytes("语言模型从大量文本中学习，预测下一个字符。".encode("gbk") * 20)
    result = _cli("prepare", str(gbk), "--out", str(tmp_path / "o2"), "--tokenizer", "char")
    assert result.returncode == 2 and "GB18030" in result.stderr


_SELF_SIGNAL = """
import os, signal, sys, threading, time
from llmtrain.cli.main import main
from llmtrain.data.prepare import normalise, pipeline
mode, args = sys.argv[1], sys.argv[2:]
if mode == "term":  # SIGTERM from outside while pass 1 runs
    original, seen = normalise.Normalise.process, [0]
    def process(self, doc):
        seen[0] += 1
        if seen[0] == 30:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, doc)
    normalise.Normalise.process = process
else:  # Ctrl-C while the tokenizer trains in native code that ignores Python's signals
    def train(*a, **kw):
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        time.sleep(60)  # stands for the Rust trainer's merge loop
    pipeline.train_tokenizer = train
t0 = time.time()
code = main(args)
print(f"elapsed {time.time() - t0:.2f}", file=sys.stderr)
sys.exit(code)
"""


def _run_signalled(mode: str, raw: Path, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    args = ["prepare", str(raw), "--out", str(out), "--tokenizer", "bpe", "--vocab-size", "300",
            "--workers", "1", "--quiet"]  # fmt: skip
    return subprocess.run([sys.executable, "-c", _SELF_SIGNAL, mode, *args], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _corpus(root: Path) -> Path:
    raw = root / "raw"
    raw.mkdir()
    rows = [{"text": f"document {i}: " + GOOD[: 40 + i]} for i in range(80)]
    (raw / "a.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return raw


@pytest.mark.timeout(120)
def test_sigterm_stops_like_ctrl_c_and_resume_finishes(tmp_path):
    raw = _corpus(tmp_path)
    whole = _cli("prepare", str(raw), "--out", str(tmp_path / "whole"), "--tokenizer", "bpe",
                 "--vocab-size", "300", "--workers", "1", "--quiet")  # fmt: skip
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "out"
    stopped = _run_signalled("term", raw, out)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr
    assert "Traceback" not in stopped.stderr and "--resume" in stopped.stderr
    assert not (out / "manifest.json").exists()
    resumed = _cli("prepare", str(raw), "--out", str(out), "--tokenizer", "bpe", "--vocab-size",
                   "300", "--workers", "1", "--quiet", "--resume")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    for shard in ("train/shard_00000.bin", "val/shard_00000.bin"):
        assert (out / shard).read_bytes() == (tmp_path / "whole" / shard).read_bytes()


@pytest.mark.timeout(120)
def test_ctrl_c_during_tokenizer_training_acts_within_a_second(tmp_path):
    raw = _corpus(tmp_path)
    t0 = time.monotonic()
    stopped = _run_signalled("int", raw, tmp_path / "out")
    assert stopped.returncode == 130, stopped.stderr
    assert "Traceback" not in stopped.stderr
    elapsed = float(stopped.stderr.rsplit("elapsed ", 1)[1].split()[0])
    assert elapsed < 5.0 and time.monotonic() - t0 < 60  # the fake trainer sleeps 60 s
    checkpoint = json.loads((tmp_path / "out" / ".prepare_checkpoint.json").read_text())
    assert checkpoint["phase"] == "cleaned"  # --resume goes on from the tokenizer
