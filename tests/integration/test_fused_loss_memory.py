"""The fused LM head + loss holds one chunk of logits, not rows × vocab: one CLM training
step (forward + backward) of a 64k-vocabulary model on 1,024 positions, each mode in its own
process, peak resident memory above the process's memory before the step (`VmHWM` − `VmRSS`).
The unfused step holds the fp32 logits, their log-softmax and its gradient (~256 MiB each
here); the fused one a 32 MiB chunk (at most: in bf16 half of it). The plan's estimate of both is checked beside it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from llmtrain.models import ModelConfig
from llmtrain.objectives.fused_loss import block_rows, chunk_rows
from llmtrain.plan import estimate_memory

V, T, B = 65_536, 256, 4

STEP = f"""
import json, sys, torch
from llmtrain.models import ModelConfig, build_model
from llmtrain.objectives import ObjectiveConfig, build_objective

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

torch.set_num_threads(1)
torch.manual_seed(0)
model = build_model(ModelConfig(vocab_size={V}, block_size={T}, n_layer=1, n_head=2, n_embd=64))
opts = ObjectiveConfig(fused_loss=sys.argv[1], loss_chunk_mib=32)
obj = build_objective("clm", opts, {V}, {T}, seed=0)
x = torch.randint(0, {V}, ({B}, {T} + 1))
batch = obj.make_batch((x[:, :-1], x[:, 1:]), step=0, micro=0)
before = status("VmRSS")
out = obj.forward(model, batch)
loss, _ = obj.loss(out, batch)
loss.backward()
print(json.dumps({{"peak": status("VmHWM") - before, "loss": loss.item(),
                   "fused": "head_loss" in out}}))
"""


def _step(mode: str) -> dict:
    res = subprocess.run(
        [sys.executable, "-c", STEP, mode], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_the_fused_head_holds_a_chunk_of_logits_not_all_of_them():
    plain, fused = _step("off"), _step("on")
    assert fused["fused"] and not plain["fused"]
    assert fused["loss"] == pytest.approx(plain["loss"], rel=1e-5)
    logits = B * T * V * 4  # 256 MiB of fp32 logits
    assert plain["peak"] > 2 * logits  # logits + log-softmax + gradient
    assert fused["peak"] < logits / 2 < plain["peak"] / 4, (fused, plain)


def test_the_plan_estimates_one_chunk_of_logits_when_the_loss_is_fused():
    cfg = ModelConfig(vocab_size=V, block_size=T, n_layer=2, n_head=2, n_embd=64)
    plain = estimate_memory(cfg, B)
    fused = estimate_memory(cfg, B, fused_loss=True, loss_chunk_mib=32)
    assert plain.logits == B * T * V * 8
    assert fused.logits == chunk_rows(V, 32) * V * 4 + block_rows(V) * V * 4  # fp32 run
    bf16 = estimate_memory(
        cfg, B, fused_loss=True, loss_chunk_mib=32, autocast_dtype=torch.bfloat16
    )
    assert bf16.logits == chunk_rows(V, 32) * V * 2 + block_rows(V) * V * 4  # bf16 logits
    # the probe measured no saved log-probabilities (B·T·V fp32) under the fused loss
    assert fused.activations < plain.activations - 0.9 * B * T * V * 4
    assert fused.peak < plain.peak / 2
