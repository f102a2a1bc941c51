"""bench/engine_throughput.py's model-MFU path (`--preset`, the one the GPU runs use) works
end to end on a CPU with tiny shapes and reports MFU against a peak (and, interleaved, the step with its loss unfused); the preset's vocabulary
is kept even though the text is byte-tokenized; `--profile` prints the top ops."""

from __future__ import annotations

import json

import torch

from .conftest import load_file


def load_bench():
    return load_file("bench/engine_throughput.py")


def test_preset_mfu_path_on_cpu(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("训练 a small model on a small text.\n" * 300, encoding="utf-8")
    bench = load_bench()
    argv = ["--preset", "llama-tiny", "--device", "cpu", "--compile", "off", "--text", str(text),
            "--rounds", "2", "--round-steps", "2", "--warmup-steps", "1", "--micro-batch", "2",
            "--threads", "1", "--peak-tflops", "1", "--set", "model.vocab_size=8192",
            "--profile", "1", "--unfused-loss"]  # fmt: skip
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["preset"] == "llama-tiny" and result["precision"] == "bf16"
    assert result["seq"] == 64 and result["tokens_per_sec"] > 0 and result["peak_tflops"] == 1
    expected = result["tokens_per_sec"] * result["flops_per_token"] / 1e12
    assert abs(result["mfu"] - expected) < 1e-4
    assert "MFU" in out and "llama-tiny" in out
    assert result["fused_loss"] and result["vs_unfused_loss"] > 0  # --unfused-loss interleaved
    assert "fused / unfused" in out
    assert "--- profile ours: 1 steps" in out and "aten::mm" in out  # --profile: top ops
    if not torch.cuda.is_available():  # a clear error, not a traceback
        assert bench.main(["--preset", "llama-tiny", "--device", "cuda", "--text", str(text)]) == 2
        assert "CUDA is not available" in capsys.readouterr().err
