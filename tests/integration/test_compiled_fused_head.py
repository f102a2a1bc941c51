"""A run that compiles keeps the fused LM head + loss (`objective.fused_loss`): on a CPU
`auto` leaves it on (measured faster there than Inductor's compiled loss), and forced on it
trains — each block compiled, or the whole forward as one graph around the op (which stays
out of graphs) — like the eager run, to the compiled kernels' rounding. With
LLMTRAIN_TEST_DEVICE=cuda (bench/gpu_speed.sh) the same runs take the op's compiled chunk
pass on the GPU."""

from __future__ import annotations

import pytest

from llmtrain.monitor.metrics import read_metrics

from . import test_engine_rollback as rollback
from .test_engine_rollback import trainer

kept_data = rollback.kept_data  # the same module-scoped corpus fixture


def losses(tr, run) -> tuple[list[float], list[float]]:
    tr.fit()
    recs = read_metrics(run / "metrics.jsonl")
    train = [r["loss"] for r in recs if "loss" in r and "event" not in r]
    return train, [r["val_loss"] for r in recs if r.get("val_loss") is not None]


def test_auto_keeps_the_fused_head_in_a_compiled_cpu_run(kept_data, tmp_path):
    tr = trainer(kept_data, tmp_path / "auto", **{"train.compile": "on", "train.max_steps": 1})
    cpu = tr.prec.device.type == "cpu"  # on a GPU (LLMTRAIN_TEST_DEVICE=cuda): Inductor's loss
    assert tr.prec.compile and tr.objective.fused_loss == tr.objective.fused_compiled == cpu


@pytest.mark.parametrize("scope", ["blocks", "model"])
def test_the_fused_head_trains_in_a_compiled_run_like_in_an_eager_one(kept_data, tmp_path, scope):
    sets = {"objective.fused_loss": "on", "train.max_steps": 6, "train.eval_every": 3}
    eager = losses(trainer(kept_data, tmp_path / "eager", **sets), tmp_path / "eager")
    sets |= {"train.compile": "on", "train.compile_scope": scope}
    tr = trainer(kept_data, tmp_path / scope, **sets)
    assert tr.prec.compile and tr.objective.fused_loss
    got = losses(tr, tmp_path / scope)
    assert len(got[0]) == len(eager[0]) == 6 and len(got[1]) == len(eager[1]) == 2
    # on a GPU (LLMTRAIN_TEST_DEVICE=cuda) the op's chunk pass is compiled too, and the
    # compiled bf16 kernels round differently from the eager ones
    rel = 2e-3 if tr.prec.device.type == "cpu" else 1e-2
    for a, b in zip(got[0] + got[1], eager[0] + eager[1], strict=True):
        assert a == pytest.approx(b, rel=rel)
