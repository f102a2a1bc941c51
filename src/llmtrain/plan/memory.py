"""Training memory of a config, component by component, and the micro-batch that fits.

    weights      P · 4 bytes (fp32 master weights; autocast computes in bf16 from them)
    optimizer    P · 4 · k (AdamW/Muon: k = 2 moments; SGD with momentum 1; Adafactor ~0)
    gradients    P · 4 once backward has run (freed by zero_grad(set_to_none) between steps)
    activations  what autograd saves for backward, per micro-batch: MEASURED on this code,
                 not taken from a paper table — one forward of the real model at width d and
                 depth 1–2, batch 1, two short lengths, with `saved_tensors_hooks` counting the
                 bytes of every saved tensor (dtypes as under the run's autocast). That gives
                 bytes = a·T + b·T² per sequence per layer (b ≠ 0 only where attention
                 materialises its scores) plus the embedding/head/loss share, so any family,
                 objective or precision is counted as it really runs. With activation
                 checkpointing a layer keeps only its input, and one layer is recomputed.
    logits       the loss's transient in backward: gradients of the (B, T, V) log-probs and
                 logits (fp32), plus the cast to the compute dtype under autocast; with the
                 fused head + loss (`objective.fused_loss`, on where a run does not compile)
                 one chunk (rows: `loss_chunk_mib` of fp32 logits) of compute-dtype logits
                 with their gradient written over them (fp16: beside them, in fp32) and one
                 fp32 block of its rows, during the forward (the probe then measures what
                 the fused op keeps: the gradients of the head's input and weight)

The peak comes at the start of backward: weights + optimizer state + all saved activations +
the logits' gradient (+ gradients already held by accumulation). `fit_micro_batch` picks the
largest divisor of the per-rank batch whose peak fits a memory limit.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass

import torch

from llmtrain.models.config import ModelConfig

STATE_PER_PARAM = {"adamw": 2, "muon": 2, "sgd": 1, "adafactor": 0}


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    optimizer: int
    gradients: int
    activations: int
    logits: int

    @property
    def peak(self) -> int:
        return self.weights + self.optimizer + self.gradients + self.activations + self.logits

    def table(self) -> list[tuple[str, float]]:
        rows = [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)]
        return [(k, v / 2**20) for k, v in rows] + [("peak", self.peak / 2**20)]


def _saved_bytes(
    cfg: ModelConfig, n_layer: int, seq: int, autocast_dtype, batch: int = 1, fused: bool = False
) -> int:
    """Bytes autograd saves in one forward + loss of `cfg` at depth `n_layer` (`fused`: the
    LM head fused with the loss, as `objective.fused_loss` runs it)."""
    from llmtrain.models import build_model
    from llmtrain.objectives.fused_loss import FusedLinearCE

    small = dataclasses.replace(cfg, n_layer=n_layer, block_size=max(seq, 2), dropout=0.0)
    # Built on meta, then given storage that is never written: the pages of the weights stay
    # unmapped (reads of untouched memory map the kernel's zero page), so a probe at width
    # 3072 and a 128k vocabulary costs what autograd saves, not GBs of initialised weights.
    # What autograd saves depends on shapes and dtypes only, never on the weights' values.
    with torch.device("meta"):
        model = build_model(small, device=torch.device("meta"))
    model = model.to_empty(device="cpu")
    total = 0
    seen = {p.untyped_storage().data_ptr() for p in model.parameters()}  # weights: not activations

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        key = t.untyped_storage().data_ptr()
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
        return t

    x = torch.randint(0, cfg.vocab_size, (batch, seq + 1))
    ctx = (
        torch.autocast("cpu", dtype=autocast_dtype) if autocast_dtype else contextlib.nullcontext()
    )
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), ctx:
        if fused:
            loss = model(x[:, :-1], head=FusedLinearCE(x[:, 1:])).loss
        else:
            logits = model(x[:, :-1])
            loss = torch.nn.functional.cross_entropy(
                logits.float().reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1)
            )
            del logits
    del loss, model
    return total


@dataclass(frozen=True)
class ActivationModel:
    """Saved bytes of one forward: per layer `layer_fixed + B·(per_token·T + per_token2·T²)`,
    outside the layers `outer_fixed + B·outer_per_token·T`. The fixed parts are what does not
    grow with the batch: under autocast, the compute-dtype copies of the weights."""

    layer_fixed: float
    per_token: float
    per_token2: float
    outer_fixed: float
    outer_per_token: float

    def bytes(self, n_layer: int, batch: int, seq: int) -> float:
        per_seq = self.per_token * seq + self.per_token2 * seq * seq
        inner = n_layer * (self.layer_fixed + batch * per_seq)
        return inner + self.outer_fixed + batch * self.outer_per_token * seq


def activation_model(cfg: ModelConfig, autocast_dtype, fused: bool = False) -> ActivationModel:
    """Measure `ActivationModel` on the real code (module docstring): depths 1 and 2, three
    lengths, solved exactly for the per-layer constant, linear and quadratic terms."""
    import numpy as np

    lengths = sorted({max(4, min(t, cfg.block_size)) for t in (16, 32, 64)})
    m = {
        (n, t): _saved_bytes(cfg, n, t, autocast_dtype, fused=fused)
        for n in (1, 2)
        for t in lengths
    }
    layer = np.array([m[(2, t)] - m[(1, t)] for t in lengths], dtype=np.float64)
    ts = np.array(lengths, dtype=np.float64)
    powers = 3 if len(lengths) == 3 else len(lengths)
    coef = np.linalg.lstsq(np.vander(ts, powers, increasing=True), layer, rcond=None)[0]
    c, a, b = (list(coef) + [0.0, 0.0])[:3]
    outer = np.array([m[(1, t)] for t in lengths]) - layer
    o = np.linalg.lstsq(np.vander(ts, min(2, len(lengths)), increasing=True), outer, rcond=None)[0]
    o0, o1 = (list(o) + [0.0])[:2]
    return ActivationModel(max(0.0, c), a, max(0.0, b), max(0.0, o0), o1)


def estimate_memory(
    cfg: ModelConfig,
    micro_batch: int,
    *,
    autocast_dtype: torch.dtype | None = None,
    optimizer: str = "adamw",
    activation_checkpointing: bool = False,
    accumulating: bool = False,
    activations: ActivationModel | None = None,
    fused_loss: bool = False,
    loss_chunk_mib: float = 1024,
) -> MemoryEstimate:
    """The training memory of `cfg` at `micro_batch` sequences of `cfg.block_size` tokens
    (`fused_loss`: the LM head fused with its loss, chunks of `loss_chunk_mib`)."""
    from llmtrain.models import build_model
    from llmtrain.objectives.fused_loss import block_rows, chunk_rows

    with torch.device("meta"):
        params = sum(p.numel() for p in build_model(cfg, device=torch.device("meta")).parameters())
    T, B = cfg.block_size, micro_batch
    act = activations or activation_model(cfg, autocast_dtype, fused_loss)
    if activation_checkpointing:  # inputs kept per layer, one layer's activations recomputed
        elem = 2 if autocast_dtype else 4
        saved = cfg.n_layer * B * T * cfg.n_embd * elem + act.bytes(1, B, T)
    else:
        saved = act.bytes(cfg.n_layer, B, T)
    # backward of the loss holds, beside the saved log-probabilities, the gradient w.r.t.
    # them and w.r.t. the fp32 logits (4 + 4 bytes), and that gradient's compute-dtype cast
    logits_grad = B * T * cfg.vocab_size * (8 + (2 if autocast_dtype else 0))
    if fused_loss:  # one chunk of logits in the compute dtype, the gradient written over
        # them (fp16: beside them, in fp32), + one fp32 block of rows (a CPU's cache block)
        V = cfg.vocab_size
        rows = min(B * T, chunk_rows(V, loss_chunk_mib))
        elem = {None: 4, torch.float16: 2 + 4}.get(autocast_dtype, 2)
        logits_grad = rows * V * elem + min(rows, block_rows(V)) * V * 4
    return MemoryEstimate(
        weights=params * 4,
        optimizer=params * 4 * STATE_PER_PARAM.get(optimizer, 2),
        gradients=params * 4 if accumulating else cfg.vocab_size * cfg.n_embd * 4,
        activations=int(saved),
        logits=logits_grad,
    )


def fit_micro_batch(
    cfg: ModelConfig, per_rank_batch: int, limit_bytes: float, **kwargs
) -> tuple[int, MemoryEstimate]:
    """The largest divisor of `per_rank_batch` whose estimated peak fits `limit_bytes` (the
    smallest divisor, 1, when none does: the caller reports that it will not fit)."""
    act = kwargs.pop("activations", None) or activation_model(
        cfg, kwargs.get("autocast_dtype"), kwargs.get("fused_loss", False)
    )
    best = None
    for m in (d for d in range(1, per_rank_batch + 1) if per_rank_batch % d == 0):
        est = estimate_memory(cfg, m, activations=act, accumulating=m < per_rank_batch, **kwargs)
        if best is None or est.peak <= limit_bytes:
            best = (m, est)
        if est.peak > limit_bytes:
            break
    assert best is not None
    return best
