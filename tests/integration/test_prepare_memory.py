"""A one-line text file (no line break in 16 MiB: a dump, a minified export) prepares in
bounded memory: read as 4 MiB documents, each encoded in pieces cut at word and punctuation
boundaries. The code before this test peaked at 1.98 GB RSS on this input (the whole line in
one `encode_batch`), and importing torch for the CLI alone cost ~200 MB."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from llmtrain.tokenizer import train_tokenizer

EN = [
    "the",
    "river",
    "runs",
    "past",
    "an",
    "old",
    "mill",
    "and",
    "the",
    "model",
    "reads",
    "every",
    "word",
    "of",
    "it",
]
ZH = "河边的老磨坊旁边流过一条河语言模型从大量文本中学习预测下一个字符"


def one_line(n_bytes: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    parts, size = [], 0
    while size < n_bytes:
        if rng.random() < 0.5:
            s = " ".join(rng.choice(EN) for _ in range(60)) + ", "
        else:
            s = (
                "".join(rng.choice(ZH) for _ in range(40))
                + "，"
                + "".join(rng.sample(ZH, 9))
                + "。"
            )
        parts.append(s)
        size += len(s.encode("utf-8"))
    return "".join(parts)


# VmHWM, not ru_maxrss: Linux carries the pre-exec hiwater of the forked copy of the parent
# (here the whole pytest process) into ru_maxrss of the exec'd child; pool workers are forked
# from this small child, so their ru_maxrss is theirs
CHILD = """
import re, resource, sys
from llmtrain.cli.main import main
assert main(sys.argv[1:]) == 0
own = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
print(max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) // 1024)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB is Linux's")
def test_a_16_mib_one_line_file_prepares_under_300_mb(tmp_path):
    text = one_line(16 << 20)
    (tmp_path / "one.txt").write_text(text, encoding="utf-8")
    train_tokenizer("bpe", [text[:200_000]], 1000).save(tmp_path / "tok")
    args = ["prepare", str(tmp_path / "one.txt"), "--out", str(tmp_path / "out"),
            "--tokenizer", str(tmp_path / "tok"), "--quiet"]  # fmt: skip
    # a fresh process runs prepare and reports its own peak and its pool workers'; not this
    # process's RUSAGE_CHILDREN, the max over every child the suite ever ran
    res = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    peak_mib = int(res.stdout.split()[-1])
    assert peak_mib < 300, f"prepare peaked at {peak_mib} MiB"  # 218 MiB here
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    pieces = -(-len(text.encode("utf-8")) // (4 << 20))  # 4 MiB documents, nothing lost
    assert report["documents_kept"] == pieces and report["bad_inputs"]["lost_bytes"] == 0
