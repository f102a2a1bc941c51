"""The fused LM head + cross-entropy (`objectives/fused_loss.py`) against the unfused path:
the same loss, per-row NLL, predictions and gradients (x, weight, bias), chunked or not, with
label smoothing, z-loss and ignored rows; and every objective that fuses gives the same loss,
gradients and metrics as its logits path."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo.testing
import torch.nn.functional as F

from llmtrain.config.core import config_from_dict
from llmtrain.models import ModelConfig, build_model, get_model_preset
from llmtrain.objectives import (
    IGNORE_INDEX,
    ObjectiveConfig,
    fused_loss,
    resolve_fused_loss,
    token_loss,
)
from llmtrain.objectives.base import Tally
from llmtrain.objectives.config import OBJECTIVES
from llmtrain.objectives.fused_loss import FusedLinearCE, block_rows, chunk_rows
from llmtrain.objectives.sft import SFT

V, C = 97, 16


def _inputs(n=23, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, C, generator=g, dtype=torch.float64)
    w = torch.randn(V, C, generator=g, dtype=torch.float64) * 0.3
    b = torch.randn(V, generator=g, dtype=torch.float64) * 0.1 if bias else None
    t = torch.randint(0, V, (n,), generator=g)
    t[::4] = IGNORE_INDEX
    return x, w, b, t


@pytest.fixture(params=["cache", "8-row"])
def blocks(request, monkeypatch):
    """A chunk's softmax in the CPU's default cache blocks (here: the whole chunk), or in
    blocks of 8 rows (23 rows: 8 + 8 + 7), the case of a large vocabulary."""
    if request.param == "8-row":
        monkeypatch.setattr(fused_loss, "CACHE_BLOCK_BYTES", 1)
        assert block_rows(V) == 8
    return request.param


def _grads(fn, x, w, b):
    leaves = [v.clone().requires_grad_() for v in (x, w, b) if v is not None]
    loss = fn(*leaves, *([None] if b is None else []))
    loss.backward()
    return loss.detach(), [v.grad for v in leaves]


@pytest.mark.parametrize("rows_mib", [1e-9, 3 * 4 * V / 2**20, 1024, None])  # 1, 3, all, plain
@pytest.mark.parametrize("smoothing,z_loss", [(0.0, 0.0), (0.1, 0.0), (0.0, 1e-3), (0.2, 1e-2)])
@pytest.mark.parametrize("bias", [True, False])
def test_loss_and_gradients_equal_the_unfused_head(rows_mib, smoothing, z_loss, bias, blocks):
    x, w, b, t = _inputs(bias=bias)

    def unfused(x, w, b):
        z = F.linear(x, w, b)
        return token_loss(z, t, label_smoothing=smoothing, z_loss=z_loss)

    def fused(x, w, b):
        plain = {"min_logits": 10**9} if rows_mib is None else {"chunk_mib": rows_mib}
        head = FusedLinearCE(t, smoothing=smoothing, z_loss=z_loss, **plain)
        return head(x, w, b).loss

    ref, ref_g = _grads(unfused, x, w, b)
    got, got_g = _grads(fused, x, w, b)
    torch.testing.assert_close(got, ref.float(), rtol=1e-6, atol=1e-6)
    for g, r in zip(got_g, ref_g, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("plain", [False, True])
def test_nll_and_predictions_per_row_and_no_gradient_work_without_grad(plain, blocks):
    x, w, b, t = _inputs()
    z = F.linear(x, w, b).float()
    with torch.no_grad():  # 5 rows a chunk, or (a small head) the whole logits
        out = FusedLinearCE(t, chunk_mib=5 * 4 * V / 2**20, min_logits=10**9 * plain)(x, w, b)
    keep = t != IGNORE_INDEX
    nll = F.cross_entropy(z, t, reduction="none")  # 0 at ignored rows
    torch.testing.assert_close(out.nll, nll.float(), rtol=1e-6, atol=1e-6)
    assert torch.equal(out.pred, z.argmax(-1))
    assert out.loss.item() == pytest.approx(float(nll[keep].sum()), rel=1e-6)
    assert not out.loss.requires_grad


def test_a_frozen_head_gets_no_gradient_and_the_input_still_does():
    x, w, b, t = _inputs()
    xr = x.clone().requires_grad_()
    FusedLinearCE(t)(xr, w, b).loss.backward()
    xd = x.clone().requires_grad_()
    token_loss(F.linear(xd, w, b), t).backward()
    torch.testing.assert_close(xr.grad, xd.grad, rtol=1e-5, atol=1e-6)  # fp32 softmax
    assert w.grad is None


def test_bf16_autocast_is_as_close_to_fp64_as_the_autocast_logits_path(blocks):
    x, w, _, t = _inputs(64, bias=False)
    ref_loss, (ref_gx, ref_gw) = _grads(lambda x, w, b: token_loss(F.linear(x, w), t), x, w, None)

    def run(fused: bool):
        xs, ws = x.float().requires_grad_(), w.float().requires_grad_()
        with torch.autocast("cpu", torch.bfloat16):
            if fused:  # 4 chunks of 16 rows
                loss = FusedLinearCE(t, chunk_mib=16 * 4 * V / 2**20)(xs, ws, None).loss
            else:
                loss = token_loss(F.linear(xs, ws), t)
        loss.backward()
        assert xs.grad.dtype == ws.grad.dtype == torch.float32
        return [
            float((a.double() - r).norm() / r.norm())
            for a, r in ((loss.detach(), ref_loss), (xs.grad, ref_gx), (ws.grad, ref_gw))
        ]

    plain, fused = run(False), run(True)
    for what, p, f in zip(("loss", "dx", "dW"), plain, fused, strict=True):
        assert f <= 2 * p + 1e-6, (what, f, p)  # the chunks' bf16 partial sums: as close


def test_predictions_only_when_asked_and_small_heads_run_whole():
    x, w, b, t = _inputs()
    assert FusedLinearCE(t, predictions=False)(x, w, b).pred is None
    assert FusedLinearCE(t, predictions=False, min_logits=10**9)(x, w, b).pred is None
    # the plain path's loss carries autograd from the logits; the op's is its own Function
    assert FusedLinearCE(t, min_logits=10**9)(x, w.requires_grad_(), b).loss.grad_fn.name() \
        == "SumBackward0"  # fmt: skip


def test_fp16_gradients_do_not_underflow_before_the_loss_scale(blocks):
    # tiny gradients (a loss scaled down by 2^-20, as a step's 1 / n_targets can be): fp16
    # matmuls of them would flush to zero; the op computes them in fp32 under fp16 autocast
    x, w, _, t = _inputs(32, bias=False)
    ref = _grads(lambda x, w, b: token_loss(F.linear(x, w), t) * 2**-20, x, w, None)[1]
    xs, ws = x.float().requires_grad_(), w.float().requires_grad_()
    with torch.autocast("cpu", torch.float16):
        loss = FusedLinearCE(t)(xs, ws, None).loss * 2**-20
    loss.backward()
    for got, want in ((xs.grad, ref[0]), (ws.grad, ref[1])):
        assert float((got.double() - want).norm() / want.norm()) < 5e-3


def test_cache_blocks_change_no_bit_of_the_result(monkeypatch):
    """The block size only schedules the softmax's passes: loss, NLL, argmax and the input's
    and weight's gradients are bitwise those of whole-chunk passes, in fp32 and under bf16
    and fp16 autocast (the bias's gradient sums its blocks' sums: to rounding)."""
    x, w, b, t = _inputs(61)

    def run(dtype):
        leaves = [v.float().requires_grad_() for v in (x, w, b)]
        with torch.autocast("cpu", dtype, enabled=dtype is not None):
            out = FusedLinearCE(t, smoothing=0.1, z_loss=1e-3)(*leaves)
        out.loss.backward()
        return [out.loss, out.nll, out.pred, *(v.grad for v in leaves)]

    for dtype in (None, torch.bfloat16, torch.float16):
        whole = run(dtype)
        monkeypatch.setattr(fused_loss, "CACHE_BLOCK_BYTES", 1)  # 8 rows: 8 blocks
        blocked = run(dtype)
        monkeypatch.undo()
        for a, b_ in zip(whole[:-1], blocked[:-1], strict=True):
            assert torch.equal(a, b_), dtype
        torch.testing.assert_close(whole[-1], blocked[-1], rtol=1e-6, atol=1e-6)


def test_no_rows_is_a_zero_loss_with_zero_gradients():
    _, w, b, _ = _inputs()
    x = torch.zeros(0, C, dtype=torch.float64, requires_grad=True)
    ws, bs = w.clone().requires_grad_(), b.clone().requires_grad_()
    out = FusedLinearCE(torch.zeros(0, dtype=torch.long))(x, ws, bs)
    out.loss.backward()
    assert out.loss.item() == 0 and out.nll.shape == (0,) and out.pred.shape == (0,)
    assert not ws.grad.any() and not bs.grad.any() and x.grad.shape == (0, C)


def test_chunk_rows_follow_the_budget():
    assert chunk_rows(50_304, 1024) == 1024 * 2**20 // (4 * 50_304)
    assert chunk_rows(10**9, 1) == 1  # always at least one row
    # the rows of a head split evenly over as many chunks as the budget needs
    assert chunk_rows(50_304, 1024, 16_384) == 4_096  # not 5,336 x 3 + 376
    assert chunk_rows(50_304, 1024, 5_000) == 5_336  # one chunk: the budget's rows
    for n in (1, 7, 5_336, 5_337, 10_673, 16_383, 100_001):
        rows, cap = chunk_rows(50_304, 1024, n), chunk_rows(50_304, 1024)
        chunks = -(-n // rows)
        assert rows <= cap and chunks == -(-n // cap)  # no more chunks than the budget's
        assert chunks == 1 or n - (chunks - 1) * rows >= rows - chunks  # the last: as long


def _model(preset: str, vocab: int, sentence: bool, **extra) -> torch.nn.Module:
    fields = {**get_model_preset(preset), "vocab_size": vocab, "block_size": 32, **extra}
    fields["sentence_head"] = sentence
    torch.manual_seed(0)
    return build_model(config_from_dict(ModelConfig, fields)).double()


def _run(objective, model, batch):
    model.zero_grad()
    out = objective.forward(model, batch)
    loss, metrics = objective.loss(out, batch)
    loss.backward()
    tally = Tally()
    with torch.no_grad():
        ev = objective.forward(model, batch)
        tally.add("loss", objective.loss(ev, batch, train=False)[0])
        tally.add("n_targets", batch.n_targets)
        objective.eval_step(ev, batch, tally)
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    return out, loss.detach(), metrics, objective.report(tally), grads


@pytest.mark.parametrize(
    "name", ["clm", "prefix_lm", "mlm", "sop", "nsp", "span", "span_tied", "sft"]
)
def test_every_fusing_objective_equals_its_logits_path(name):
    g = torch.Generator().manual_seed(1)
    x = torch.randint(4, 60, (3, 24), generator=g)
    sample = (x, x.roll(-1, 1))
    opts = ObjectiveConfig(label_smoothing=0.1, z_loss=1e-3, fused_loss="on")  # tiny: forced
    if name == "sft":
        objective = SFT(60, opts)
        y = sample[1].clone()
        y[:, :10] = IGNORE_INDEX  # the prompt
        batch = objective.make_batch({"x": x, "y": y})
    else:
        objective = OBJECTIVES[name.removesuffix("_tied")](60, opts, block_size=32)
        batch = objective.make_batch(sample, step=3, micro=0)
    preset = "bert-tiny" if name in ("mlm", "sop", "nsp") else "gpt2-tiny"  # bert: head bias
    extra = {}
    if name.startswith("span"):  # T5's tied head multiplies a rescaled input
        preset, extra = "t5-tiny", {"tie_embeddings": name == "span_tied"}
    model = _model(preset, 60 + objective.extra_vocab, name in ("sop", "nsp"), **extra)
    assert name != "span_tied" or model.lm_head is None
    assert objective.fuses_loss and objective.fused_loss  # auto: on where it can
    fused = _run(objective, model, batch)
    objective.fused_loss = False
    plain = _run(objective, model, batch)
    assert "head_loss" in fused[0] and "logits" in plain[0]
    torch.testing.assert_close(fused[1], plain[1].float(), rtol=1e-6, atol=1e-6)
    for k in plain[2]:
        assert int(fused[2][k]) == int(plain[2][k]), k
    for k, v in plain[3].items():
        assert fused[3][k] == pytest.approx(v, rel=1e-6, abs=1e-9), k
    for a, b in zip(fused[4], plain[4], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)  # both: fp32 softmax


def test_resolve_fused_loss_auto_off_when_compiled_on_a_gpu_and_errors_where_it_cannot():
    from llmtrain.distributed.config import DistributedConfig
    from llmtrain.errors import ConfigError

    opts = ObjectiveConfig()
    clm = OBJECTIVES["clm"](60, opts)
    tp = DistributedConfig(tensor_parallel=2).head_outside_module_calls()
    z3 = DistributedConfig(strategy="deepspeed", zero_stage=3).head_outside_module_calls()
    assert tp == "distributed.tensor_parallel=2" and z3 == "DeepSpeed ZeRO stage 3"
    assert DistributedConfig(strategy="deepspeed", zero_stage=2).head_outside_module_calls() is None
    assert resolve_fused_loss(clm, "auto", compiled=False)
    assert resolve_fused_loss(clm, "auto", compiled=False, device="cuda")
    assert not resolve_fused_loss(clm, "auto", compiled=True, device="cuda")  # Inductor's loss
    assert resolve_fused_loss(clm, "auto", compiled=True, device="cpu")  # measured faster
    assert clm.fused_compiled  # its chunk pass compiled (on a CPU the op keeps eager passes)
    assert not resolve_fused_loss(clm, "auto", compiled=False, blocked_by=tp)
    assert resolve_fused_loss(clm, "on", compiled=True, device="cuda") and clm.fused_compiled
    assert resolve_fused_loss(clm, "on", compiled=False) and not clm.fused_compiled
    assert not resolve_fused_loss(clm, "off", compiled=False)
    electra = OBJECTIVES["electra"](60, opts)
    assert not resolve_fused_loss(electra, "auto", compiled=False)
    with pytest.raises(ConfigError, match="objective.fused_loss=on: objective 'electra'"):
        resolve_fused_loss(electra, "on", compiled=False)
    with pytest.raises(ConfigError, match="under DeepSpeed ZeRO stage 3"):
        resolve_fused_loss(clm, "on", compiled=False, blocked_by=z3)
    with pytest.raises(ConfigError, match="loss_chunk_mib"):
        ObjectiveConfig(loss_chunk_mib=0).validate()


def test_auto_gives_small_heads_the_plain_logits_and_big_ones_the_fused_op():
    clm = OBJECTIVES["clm"](60, ObjectiveConfig())  # a 60-id tokenizer
    x = torch.randint(0, 60, (4, 64))
    batch = clm.make_batch((x, x), step=0, micro=0)  # 256 rows
    assert resolve_fused_loss(clm, "auto", compiled=False)
    assert clm.head_vocab == 60 and clm.lm_head(batch) is None  # 15,360 logits: plain
    resolve_fused_loss(clm, "auto", compiled=False, head_vocab=50_304)  # the model's vocab
    assert isinstance(clm.lm_head(batch), FusedLinearCE)  # 12.9M logits: fused
    resolve_fused_loss(clm, "on", compiled=False, head_vocab=60)
    assert isinstance(clm.lm_head(batch), FusedLinearCE)  # on: whatever the size


def test_the_compiled_chunk_pass_equals_the_eager_op(monkeypatch):
    """A run that compiles runs each chunk's softmax pass as the compiled `_rows_pass`: the
    same loss, NLL, argmax and gradients as the eager in-place passes, in fp64 with smoothing,
    z-loss, a bias and ignored rows (chunks of 5, 5, 5, 5, 3 rows: one graph, its row count
    dynamic), without a gradient (eval), and under bf16 autocast (the same bf16 gradient)."""
    x, w, b, t = _inputs()
    monkeypatch.setattr(fused_loss, "EAGER_PASS_DEVICES", set())  # the GPU's path, on the CPU
    torch._dynamo.reset()
    frames = torch._dynamo.testing.CompileCounter()  # graphs Dynamo hands over, counted
    counted = torch.compile(fused_loss._rows_pass, backend=frames, fullgraph=True)

    def run(compiled, dtype=None, grad=True, **kw):
        leaves = [v.float() if dtype else v for v in (x, w, b)]
        leaves = [v.clone().requires_grad_(grad) for v in leaves]
        head = FusedLinearCE(t, chunk_mib=5 * 4 * V / 2**20, compiled=compiled, **kw)
        with torch.autocast("cpu", dtype or torch.bfloat16, enabled=dtype is not None):
            out = head(*leaves)
        if grad:
            out.loss.backward()
        return [out.loss, out.nll, out.pred, *(v.grad for v in leaves if grad)]

    kw = dict(smoothing=0.1, z_loss=1e-3)
    for dtype, grad in ((None, True), (None, False), (torch.bfloat16, True)):
        want = run(False, dtype, grad, **kw)
        got = run(True, dtype, grad, **kw)
        assert torch.equal(got[2], want[2])  # the argmax
        for g, r in zip(got, want, strict=True):
            # the softmax is fp32 either way (its sums in another order); under bf16 the
            # gradients are matmuls of bf16 logits' gradients
            tol = 2e-2 if dtype and g.dim() == 2 else 1e-5
            torch.testing.assert_close(g, r, rtol=tol, atol=tol)
    # Dynamo's graphs for 5-row and 3-row chunks: one per set of flags, not per row count
    orig = fused_loss._COMPILED_ROWS
    try:
        fused_loss._COMPILED_ROWS = counted
        run(True, None, True, **kw)
        run(True, None, True, **kw)
        assert frames.frame_count == 1
        monkeypatch.undo()  # the CPU keeps its eager cache-blocked passes
        run(True, None, True, **kw)
        assert frames.frame_count == 1
    finally:
        fused_loss._COMPILED_ROWS = orig
