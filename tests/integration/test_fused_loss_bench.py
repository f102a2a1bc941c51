"""bench/fused_loss_op.py (the GPU script's `op` stage) runs end to end on a CPU at a tiny
shape, with its compiled engines: the plain head with its loss compiled and the op with its
per-chunk pass compiled (forced on: the CPU's default keeps the eager passes)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from llmtrain.objectives import fused_loss

ROOT = Path(__file__).resolve().parents[2]


def test_op_bench_with_its_compiled_engines(capsys, monkeypatch):
    spec = importlib.util.spec_from_file_location("fused_loss_op", ROOT / "bench/fused_loss_op.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(fused_loss, "EAGER_PASS_DEVICES", fused_loss.EAGER_PASS_DEVICES)
    argv = ["--rounds", "1", "--threads", "1", "--width", "16", "--shapes", "96x300",
            "--compiled", "--whole-chunk"]  # fmt: skip
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    (row,) = result["rows"]
    assert result["device"] == "cpu" and row["rows"] == 96 and row["vocab"] == 300
    for key in ("plain_ms", "fused_ms", "whole_ms", "plain_compiled_ms", "fused_compiled_ms"):
        assert row[key] > 0, key
    ratio = row["plain_compiled_ms"] / row["fused_compiled_ms"]  # of the rounded times
    assert abs(row["compiled_ratio"] - ratio) < 2e-3 * ratio
    assert "plain_c/fused_c" in out
