"""The LM head's matmul and its cross-entropy as one autograd op that never holds the whole
(rows × vocab) logits: `FusedLinearCE`, the `head=` an objective hands to the model.

Why written here: the libraries that fuse linear + cross-entropy (Liger-Kernel, Apple's
cut-cross-entropy) are Triton kernels, CUDA only, and take neither our sparse head positions
nor a z-loss; torch.compile fuses the softmax but still materialises the logits. This is plain
PyTorch, on any device, for every objective whose loss is a token cross-entropy.

How: the rows (the head's positions) are taken in chunks of at most `chunk_mib` MiB of fp32
logits. For each chunk: logits = x W^T (+ b) in the compute dtype (autocast's, as `F.linear`
would); then, a block of rows at a time (on a CPU ~1 MiB, so the passes stay in its cache; on
a GPU the whole chunk), upcast to fp32, log-sum-exp, the target's logit, the argmax; and —
when a gradient is wanted — the gradient with respect to the logits, written back over them:

    dL/dz = w · ((1 + 2·z_loss·lse) · softmax(z) − (1 − ε)·onehot(t) − ε/V)

(ε the label smoothing; w = 1 on rows with a target, 0 on the rest), which is then multiplied
straight into dL/dx (chunk rows) and accumulated into dL/dW, dL/db (fp32). The logits are freed
chunk by chunk, so the peak is one chunk, not rows × vocab (× the 3-4 fp32/bf16 copies the
unfused loss keeps: logits, their fp32 cast, log-softmax, its gradient). The backward only
scales the stored gradients by the incoming one: the head's FLOPs are the unfused path's
(3 matmuls), done in the forward. The loss is the SUM over rows with a target (the objectives'
convention), per-row plain NLL and (when asked for) the argmax come back for eval and
accuracy. Heads of fewer than `min_logits` logits are computed whole with autograd instead
(the same `HeadLoss`; `objective.fused_loss=auto` sets FUSE_MIN_LOGITS), and under fp16 the
gradient matmuls run in fp32. The op itself stays out of compiled graphs (a Python loop over
chunks: `torch.compiler.disable`); in a run that compiles (`compiled=True`), each chunk's
softmax pass is one compiled function instead (`_rows_pass`: on a GPU, Inductor's fused
reductions read the compute-dtype logits and one pointwise kernel writes their gradient — no
fp32 copy of the chunk, ~3 passes over it instead of the eager path's ~10 kernels; on a CPU
the eager cache-blocked passes stay: they were faster there, EAGER_PASS_DEVICES). Not for
tensor parallel heads or ZeRO-3 (see `objectives.base.resolve_fused_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from llmtrain.models.layers import compute_dtype

MIB = 1 << 20
# under `objective.fused_loss=auto`, smaller heads (rows × vocab logits) take the plain path
# (the same `HeadLoss`, from whole logits and autograd): there a few whole-tensor kernels
# beat the op's per-chunk Python (`bench/fused_loss_op.py`, 2-core CPU, bf16, width 128:
# plain / fused 0.70x at 512 × 256, 1.14x at 1024 × 256, 1.53x at 2048 × 256, 3.04x at
# 2048 × 32,000; the threshold sits past the crossover), and the logits are 2 MiB at most
FUSE_MIN_LOGITS = 1 << 19


CACHE_BLOCK_BYTES = 1 << 20  # of fp32 logits: a CPU computes a chunk's softmax in such blocks
# devices whose eager cache-blocked passes beat the compiled chunk pass, which a run that
# compiles otherwise uses (`bench/fused_loss_op.py --compiled --shapes 2048x4096 2048x32000`,
# 2-core CPU, bf16, width 128, head forward + backward, medians of 9 interleaved rounds:
# 17.1 vs 18.9 ms at 2,048 x 4,096 logits, 160.0 vs 186.3 ms at 2,048 x 32,000)
EAGER_PASS_DEVICES = {"cpu"}


@dataclass
class HeadLoss:
    """What the fused head returns in place of logits: `loss` the training loss SUM (with
    label smoothing and z-loss; differentiable), `nll` (n,) each row's plain cross-entropy (0
    where no target), `pred` (n,) each row's argmax (None when not asked for: it is a whole
    pass over the logits, which CLM training does not report)."""

    loss: torch.Tensor
    nll: torch.Tensor
    pred: torch.Tensor | None


def chunk_rows(vocab: int, chunk_mib: float, n: int = 0) -> int:
    """Rows per chunk: as many as fit `chunk_mib` MiB of fp32 logits (at least one); given
    the head's `n` rows, that many chunks' rows split evenly — gpt2-124m's 16,384 rows at
    vocabulary 50,304 take 4 chunks of 4,096 rows, not 3 of 5,336 and a last one of 376, a
    skinny matmul."""
    rows = max(1, int(chunk_mib * MIB) // (4 * vocab))
    return -(-n // -(-n // rows)) if n > rows else rows


def block_rows(vocab: int) -> int:
    """Rows of a chunk whose softmax a CPU computes at a time: ~1 MiB of fp32 logits (at least
    8 rows), so its six passes (cast, max, exp, sum, scale, cast back) run in the core's
    cache instead of streaming the chunk through memory each time; the matmuls still take the
    whole chunk. Measured (`bench/fused_loss_op.py --whole-chunk`, bf16, blocks against whole-
    chunk passes, interleaved): 1.91x at 2,048 x 4,096 logits and 1.67x at 2,048 x 32,000 (2
    threads, width 128); 1.70x, 1.67x, 1.60x at 8,192 x 8,192, 2,048 x 32,000 and 2,048 x
    128,256 (1 thread, width 192); 0.90-1.04x at vocabulary 256, below `auto`'s threshold."""
    return max(8, CACHE_BLOCK_BYTES // (4 * vocab))


class _LinearCE(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, x, weight, bias, targets, ignore, smoothing, z_loss, rows, block, want_pred, rows_fn
    ):
        # x (n, C), weight (V, C), bias (V,) | None, targets (n,): `ignore` where none;
        # rows_fn: None (the in-place block passes below) or a compiled `_rows_pass`
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = bias is not None and ctx.needs_input_grad[2]
        grad = need_x or need_w or need_b
        cdt = compute_dtype(x)
        # fp16's range relies on the loss scale, which is applied after this forward (in
        # backward): its gradient matmuls run in fp32 instead, so small ones cannot underflow
        gdt = torch.float32 if cdt == torch.float16 else cdt
        n, V = x.size(0), weight.size(0)
        with torch.autocast(x.device.type, enabled=False):
            xc, wc = x.to(cdt), weight.to(cdt)
            bc = None if bias is None else bias.to(cdt)
            xg, wg = (xc, wc) if gdt == cdt else (x.to(gdt), weight.to(gdt))
            f32 = dict(dtype=torch.float32, device=x.device)
            gx = torch.empty_like(xg) if need_x else None
            gw = gb = None  # fp32 sums over the chunks (the first chunk's, then added to)
            nll = torch.zeros(n, **f32)
            pred = torch.zeros(n if want_pred else 0, dtype=torch.long, device=x.device)
            per_row = torch.zeros(n, **f32)  # each row's loss, summed once at the end
            for s in range(0, n, rows):
                e = min(n, s + rows)
                zc = F.linear(xc[s:e], wc, bc)  # (c, V) this chunk's logits, compute dtype
                d = zc  # dL/dz, written over the logits; under fp16 beside them, in fp32
                if rows_fn is not None:  # the chunk's passes as one compiled function
                    t = targets[s:e]
                    torch._dynamo.maybe_mark_dynamic(zc, 0)  # one graph for any row count
                    torch._dynamo.maybe_mark_dynamic(t, 0)
                    flags = (grad, gdt, want_pred, need_b)
                    c_nll, c_per, c_pred, d, c_gb = rows_fn(
                        zc, t, ignore, smoothing, z_loss, *flags
                    )
                    nll[s:e], per_row[s:e] = c_nll, c_per
                    if want_pred:
                        pred[s:e] = c_pred
                    if need_b:
                        gb = c_gb if gb is None else gb.add_(c_gb)
                    zc = None  # the logits, now that their gradient is beside them
                elif grad and gdt != zc.dtype:
                    d = torch.empty(zc.shape, dtype=gdt, device=x.device)
                for a in range(0, e - s if rows_fn is None else 0, block):  # in the CPU's cache
                    b = min(e - s, a + block)
                    z = zc[a:b].float()  # (r, V) fp32 (a view when the logits are fp32)
                    t = targets[s + a : s + b]
                    keep = (t != ignore).float()  # (r,) rows with a target
                    ti = t.clamp_min(0)[:, None]  # (r, 1)
                    tz = z.gather(1, ti).squeeze(1)  # (r,) the target's logit
                    if want_pred:
                        pred[s + a : s + b] = z.argmax(-1)
                    mean = z.mean(-1) if smoothing else None
                    top = z.amax(-1)  # (r,)
                    total = z.sub_(top[:, None]).exp_().sum(-1)  # z is now exp(logits - max)
                    lse = top + total.log()  # (r,) log-sum-exp
                    nll[s + a : s + b] = (lse - tz) * keep
                    per = (1 - smoothing) * (lse - tz) + z_loss * lse.square()
                    if smoothing:
                        per = per + smoothing * (lse - mean)
                    per_row[s + a : s + b] = per * keep
                    if not grad:
                        continue
                    # softmax · w · (1 + 2·z_loss·lse): one pass over the block, in place
                    p = z.mul_((keep * (1 + 2 * z_loss * lse) / total)[:, None])
                    p.scatter_add_(1, ti, -(1 - smoothing) * keep[:, None])
                    if smoothing:
                        p.sub_((smoothing / V) * keep[:, None])
                    if need_b:
                        gb = p.sum(0) if gb is None else gb.add_(p.sum(0))
                    if d[a:b].data_ptr() != p.data_ptr():  # cast as autograd would cast it
                        d[a:b] = p
                if grad:  # d (c, V) = dL/dz of the chunk
                    if need_x:
                        gx[s:e] = d @ wg
                    if need_w:
                        part = (d.t() @ xg[s:e]).float()  # (V, C)
                        gw = part if gw is None else gw.add_(part)
                zc = d = z = p = None  # this chunk freed (its blocks' views too) before the next
            loss = per_row.sum()
        if n == 0:  # no rows (a batch without targets): zero gradients
            gw = torch.zeros(weight.shape, **f32) if need_w else None
            gb = torch.zeros(V, **f32) if need_b else None
        ctx.save_for_backward(
            *(g if g is not None else torch.empty(0) for g in (gx, gw, gb)),
        )
        ctx.has = (need_x, need_w, need_b)
        ctx.dtypes = (x.dtype, weight.dtype, None if bias is None else bias.dtype)
        ctx.mark_non_differentiable(nll, pred)
        return loss, nll, pred

    @staticmethod
    def backward(ctx, g_loss, _g_nll, _g_pred):
        # scaled in place: no second weight-sized buffer (a second backward through the same
        # graph, retain_graph=True, is refused by autograd's saved-tensor version check)
        out = []
        for g, has, dt in zip(ctx.saved_tensors, ctx.has, ctx.dtypes, strict=True):
            out.append(g.mul_(g_loss).to(dt) if has else None)
        return (*out, None, None, None, None, None, None, None, None)


def _rows_pass(z, t, ignore, smoothing, z_loss, grad, gdt, want_pred, need_b):
    """One chunk's softmax pass, functional (the in-place block loop of `_LinearCE.forward`,
    for a compiler): z (r, V) logits in the compute dtype, t (r,) targets → (nll (r,),
    per-row training loss (r,), argmax (r,) or None, dL/dz (r, V) in dtype `gdt` (over z when
    that is z's) or None, its column sums (the bias gradient, fp32) or None). The one-hot is a
    comparison with a column index, so the gradient is one pointwise expression."""
    V = z.size(1)
    zf = z.float()
    keep = (t != ignore).float()
    ti = t.clamp_min(0)[:, None]
    tz = zf.gather(1, ti).squeeze(1)
    top = zf.amax(-1)
    lse = top + (zf - top[:, None]).exp().sum(-1).log()
    nll = (lse - tz) * keep
    per = (1 - smoothing) * (lse - tz) + z_loss * lse.square()
    if smoothing:
        per = per + smoothing * (lse - zf.mean(-1))
    per = per * keep
    top_id = zf.argmax(-1) if want_pred else None
    if not grad:
        return nll, per, top_id, None, None
    hot = torch.arange(V, device=z.device)[None, :] == ti
    # softmax as exp(z - lse): recomputed from z, so no (r, V) buffer of exponentials is kept
    p = (zf - lse[:, None]).exp() * (keep * (1 + 2 * z_loss * lse))[:, None]
    p = p - hot * ((1 - smoothing) * keep)[:, None]
    if smoothing:
        p = p - (smoothing / V) * keep[:, None]
    gb = p.sum(0) if need_b else None
    if gdt == z.dtype:  # written over the logits, as the eager passes do: no second chunk
        return nll, per, top_id, z.copy_(p), gb
    return nll, per, top_id, p.to(gdt), gb


_COMPILED_ROWS = None


def compiled_rows_pass():
    """`_rows_pass` compiled (once per process; its row count is a dynamic dimension, so a
    last, shorter chunk or a sparse head's varying rows do not recompile it)."""
    global _COMPILED_ROWS
    if _COMPILED_ROWS is None:
        _COMPILED_ROWS = torch.compile(_rows_pass, fullgraph=True)
    return _COMPILED_ROWS


def _plain(x, weight, bias, targets, ignore, smoothing, z_loss, want_pred):
    """(loss, nll, pred) from the whole logits and autograd (a small head: FUSE_MIN_LOGITS)."""
    flat = F.linear(x, weight, bias).float()  # (n, V), fp32 for a stable softmax
    nll = F.cross_entropy(flat, targets, ignore_index=ignore, reduction="none")  # 0: ignored
    per = nll
    if smoothing:
        per = F.cross_entropy(
            flat, targets, ignore_index=ignore, reduction="none", label_smoothing=smoothing
        )
    if z_loss:
        per = per + z_loss * torch.logsumexp(flat, -1).square() * (targets != ignore)
    return per.sum(), nll.detach(), flat.argmax(-1) if want_pred else None


class FusedLinearCE:
    """`head=` for `Transformer.forward`: called with the head's input x (n, C), its weight
    (V, C) and bias, returns a `HeadLoss` against `targets` (n,) (the targets at the head's
    positions; `ignore_index` where a row has none) — the logits are never held whole.
    `smoothing` and `z_loss` shape `loss` only; `nll` is always the plain cross-entropy;
    `predictions`: also each row's argmax; heads of fewer than `min_logits` logits (rows ×
    vocab) are computed whole instead (the same result, faster for small heads); `compiled`
    (a run that compiles): each chunk's softmax pass runs as the compiled `_rows_pass`, except
    on EAGER_PASS_DEVICES (the CPU, where the eager cache blocks are faster)."""

    def __init__(
        self,
        targets: torch.Tensor,
        *,
        ignore_index: int = -100,
        smoothing: float = 0.0,
        z_loss: float = 0.0,
        chunk_mib: float = 1024,
        predictions: bool = True,
        min_logits: int = 0,
        compiled: bool = False,
    ) -> None:
        self.targets, self.ignore_index = targets, ignore_index
        self.smoothing, self.z_loss = smoothing, z_loss
        self.chunk_mib, self.predictions = chunk_mib, predictions
        self.min_logits, self.compiled = min_logits, compiled

    def __call__(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> HeadLoss:
        lead = x.shape[:-1]
        x = x.reshape(-1, x.size(-1))
        targets = self.targets.reshape(-1).to(x.device)
        if targets.numel() != x.size(0):
            raise ValueError(f"{x.size(0)} head rows but {targets.numel()} targets")
        args = (targets, self.ignore_index, float(self.smoothing), float(self.z_loss))
        if x.size(0) * weight.size(0) < self.min_logits:
            loss, nll, pred = _plain(x, weight, bias, *args, self.predictions)
        else:
            loss, nll, pred = self._chunked(x, weight, bias, args)
        return HeadLoss(loss, nll.reshape(lead), None if pred is None else pred.reshape(lead))

    @torch.compiler.disable  # a Python loop over chunks: left out of any compiled graph
    def _chunked(self, x, weight, bias, args):
        rows = chunk_rows(weight.size(0), self.chunk_mib, x.size(0))
        block = block_rows(weight.size(0)) if x.device.type == "cpu" else rows
        eager = not self.compiled or x.device.type in EAGER_PASS_DEVICES
        rows_fn = None if eager else compiled_rows_pass()
        loss, nll, pred = _LinearCE.apply(
            x, weight, bias, *args, rows, block, self.predictions, rows_fn
        )
        return loss, nll, pred if self.predictions else None
