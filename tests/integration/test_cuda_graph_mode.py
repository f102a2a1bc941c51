"""`train.compile_mode=reduce-overhead | max-autotune` (CUDA graphs): what the loop changes
for them — gradients accumulate into fixed buffers zeroed in place (a replay overwrites what
its capture wrote), eval and text samples run eager — must not change a bit of training.

On the CPU Inductor never captures graphs, so the loop's side is forced on here with the
model eager (`captures_cuda_graphs` patched): accumulation, the guard's skips and rollback,
sync-free or not, bitwise against the ordinary loop. With LLMTRAIN_TEST_DEVICE=cuda the last
test compiles for real and compares reduce-overhead with the default mode on the GPU."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from llmtrain.monitor.metrics import read_metrics
from llmtrain.train import trainer as trainer_module

from . import test_engine_rollback as rollback
from .test_engine_rollback import BAD, corrupt, trainer

kept_data = rollback.kept_data  # the same module-scoped corpus fixture


def outcome(tr, run: Path) -> tuple:
    tr.fit()
    recs = read_metrics(run / "metrics.jsonl")
    rows = [(r.get("event"), r["step"], r.get("loss"), r.get("grad_norm"), r.get("val_loss"))
            for r in recs if r.get("event") != "checkpoint"]  # fmt: skip
    return rows, {k: v.clone() for k, v in tr.model.state_dict().items()}


@pytest.mark.parametrize("sync_free", ["off", "on"])
def test_fixed_gradient_buffers_train_bitwise_like_fresh_ones(
    kept_data, tmp_path, monkeypatch, sync_free
):
    sets = {"train.sync_free": sync_free, "optim.implementation": "fused",
            "train.eval_every": 8, "train.sample_every": 12}  # fmt: skip
    plain = trainer(kept_data, tmp_path / "plain", **sets)
    corrupt(plain, BAD)  # two skipped steps, then a rollback to the step-10 checkpoint
    assert plain.accum == 2 and not plain.cuda_graphs
    expected = outcome(plain, tmp_path / "plain")

    monkeypatch.setattr(trainer_module, "captures_cuda_graphs", lambda *a: True)
    stances: list[str] = []
    set_stance = torch.compiler.set_stance
    monkeypatch.setattr(
        torch.compiler, "set_stance", lambda s, **kw: stances.append(s) or set_stance(s, **kw)
    )
    graphed = trainer(kept_data, tmp_path / "graphed", **sets)
    corrupt(graphed, BAD)
    buffers = {n: p.grad.data_ptr() for n, p in graphed.model.named_parameters()}
    assert graphed.cuda_graphs and len(buffers) > 0
    got = outcome(graphed, tmp_path / "graphed")

    assert [r[0] for r in expected[0] if r[0]] == ["skipped_step", "skipped_step", "rollback",
                                                   "sample", "sample"]  # fmt: skip
    assert got[0] == expected[0]  # losses, grad norms, events, val losses
    for k, v in expected[1].items():
        assert torch.equal(v, got[1][k]), k
    after = {n: p.grad.data_ptr() for n, p in graphed.model.named_parameters()}
    assert after == buffers  # the same buffers throughout, zeroed in place
    assert all(not p.grad.any() for p in graphed.model.parameters())
    evals = sum(1 for r in expected[0] if r[4] is not None)
    assert stances.count("force_eager") == evals + 2  # every eval and both samples


@pytest.mark.skipif(
    os.environ.get("LLMTRAIN_TEST_DEVICE") != "cuda", reason="CUDA graphs need a CUDA GPU"
)
def test_cuda_graphs_train_like_the_default_compile_mode(kept_data, tmp_path):
    runs = {}
    for mode in ("default", "reduce-overhead"):
        sets = {"train.compile": "on", "train.compile_mode": mode, "train.eval_every": 8}
        tr = trainer(kept_data, tmp_path / mode, **sets)
        assert tr.cuda_graphs == (mode != "default")
        runs[mode] = outcome(tr, tmp_path / mode)
    (rows, _), (graphed, _) = runs["default"], runs["reduce-overhead"]
    assert [r[:4] for r in graphed] == [r[:4] for r in rows]  # the same kernels, replayed
    for r, g in zip(rows, graphed, strict=True):  # eval: eager there, compiled here
        assert (r[4] is None) == (g[4] is None) and (r[4] is None or abs(r[4] - g[4]) < 1e-4)
    for k, v in runs["default"][1].items():
        assert torch.equal(v, runs["reduce-overhead"][1][k]), k
