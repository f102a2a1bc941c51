"""Mixture of Experts: a drop-in for the MLP of any block (`model.n_experts > 0`).

Top-k softmax routing (Shazeer et al. 2017; Mixtral renormalises the k gates), dropless or
with a capacity of ceil(capacity_factor · N · k / E) tokens per expert (first choices first,
GShard/Switch priority). The N·k assignments are sorted by expert once. Dropless: two grouped
GEMMs over the experts' contiguous rows where `torch._grouped_mm` runs (GROUPED_MM_DEVICES,
bf16; no host read), else a matmul per expert (one host read of the row counts per layer).
With a capacity: the experts' padded rows as batched matmuls (no host read). After each
forward the layer holds `aux_loss` (the weighted sum of
the Switch load-balancing loss, the router z-loss and the importance/load CV² losses) and
`tokens_per_expert` (for metrics); `moe_aux_loss(model)` sums the former over layers.
Expert weights are stacked 3-D tensors, the layout of HF Mixtral (`gate_up_proj`, `down_proj`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from llmtrain.models.config import ModelConfig
from llmtrain.models.layers import GATE_ACT, activation, compute_dtype

# devices where dropless MoE runs its experts as one grouped GEMM (`torch._grouped_mm`, group
# offsets on the device: no host read) instead of a matmul per expert after reading the row
# counts: measured faster on a CPU (`bench/moe_dispatch.py --grouped`); CUDA's grouped GEMM
# (sm90, bf16) is to be measured there first
GROUPED_MM_DEVICES = {"cpu"}
GROUPED_MM_DTYPES = (torch.bfloat16,)  # what its compiled form (and CUDA's kernel) take
# each expert's rows start at a multiple of this in the grouped GEMM's input (16-byte aligned
# groups for CUDA's kernels; the padding rows are zeros and cost ~E·16 rows)
GROUP_ALIGN = 16


def _cv2(x: torch.Tensor) -> torch.Tensor:
    """Squared coefficient of variation, var / mean² (Shazeer et al. 2017, eq. 6)."""
    return x.float().var(correction=0) / (x.float().mean() ** 2 + 1e-10)


class MoE(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_experts, self.top_k = cfg.n_experts, cfg.moe_top_k
        self.gate_act = GATE_ACT.get(cfg.mlp)
        f_in = 2 * cfg.ffn_dim if self.gate_act else cfg.ffn_dim
        self.router = nn.Linear(cfg.n_embd, cfg.n_experts, bias=False)
        self.w_in = nn.Parameter(torch.empty(cfg.n_experts, f_in, cfg.n_embd))  # (E, F|2F, C)
        self.w_out = nn.Parameter(torch.empty(cfg.n_experts, cfg.n_embd, cfg.ffn_dim))  # (E, C, F)
        self.dropout = cfg.drop("resid")
        self.aux_loss: torch.Tensor | None = None
        self.tokens_per_expert: torch.Tensor | None = None  # (E,) assignments in the last call
        self.router_entropy: torch.Tensor | None = None  # mean routing entropy, last call

    def _ffn(self, x: torch.Tensor, w_in: torch.Tensor, w_out: torch.Tensor) -> torch.Tensor:
        """The expert MLP: x (n, C) with one expert's weights, or (E, cap, C) with all of them
        stacked (a batched matmul per projection)."""
        return torch.matmul(self._act(torch.matmul(x, w_in.mT)), w_out.mT)  # (.., C)

    def _act(self, h: torch.Tensor) -> torch.Tensor:
        """The expert MLP's activation of its first projection (.., F) or, gated, (.., 2F)."""
        if self.gate_act is None:
            return activation(self.cfg.mlp, h)
        gate, up = h.chunk(2, dim=-1)
        return (F.silu(gate) if self.gate_act == "silu" else activation(self.gate_act, gate)) * up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        xf = x.reshape(-1, C)  # (N, C)
        n, E, k = xf.size(0), self.n_experts, self.top_k
        logits = self.router(xf).float()  # (N, E); routing in fp32
        probs = logits.softmax(dim=-1)  # (N, E)
        gates, chosen = probs.topk(k, dim=-1)  # (N, k) each
        if self.cfg.moe_renormalize:
            gates = gates / gates.sum(dim=-1, keepdim=True)
        # the N·k assignments sorted by expert, then rank (first choices first), then token:
        # each expert's rows contiguous, in the capacity's priority order
        a = torch.arange(n * k, device=x.device)
        e_a = chosen.reshape(-1)
        order = (e_a * (k * n) + (a % k) * n + a // k).argsort()
        tok, g = (a // k)[order], gates.reshape(-1)[order]  # (N·k,) token, gate of each row
        e_s = e_a[order]  # (N·k,) expert of each sorted row
        # (E,) assignments, before any capacity (not bincount: on CUDA it reads the max on
        # the host to size its output)
        counts = torch.zeros(E, dtype=torch.long, device=x.device).index_add_(
            0, e_a, torch.ones_like(e_a)
        )
        dt = compute_dtype(xf)  # the experts' matmuls' dtype
        if self.cfg.moe_capacity_factor:
            cap = math.ceil(self.cfg.moe_capacity_factor * n * k / E)
            out = self._capacity(xf, tok, g, counts, cap)
        elif self._grouped_mm(xf, dt):
            out = self._grouped(xf, tok, g, counts, e_s, dt)
        else:
            out = self._dropless(xf, tok, g, counts)
        self.tokens_per_expert = counts.detach()
        with torch.no_grad():  # for monitoring: low entropy = a router that stopped exploring
            self.router_entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1).mean()
        self.aux_loss = self._aux(logits, probs, gates, chosen, counts)
        y = out.view(B, T, C)
        if self.training and self.dropout > 0:
            y = F.dropout(y, self.dropout, training=True)
        return y

    @staticmethod
    def _grouped_mm(xf: torch.Tensor, dt: torch.dtype) -> bool:
        """Dropless runs as one grouped GEMM here (GROUPED_MM_DEVICES, a dtype it takes)."""
        on = xf.device.type in GROUPED_MM_DEVICES and dt in GROUPED_MM_DTYPES
        return on and hasattr(torch, "_grouped_mm")

    def _grouped(self, xf, tok, g, counts, e_s, dt: torch.dtype) -> torch.Tensor:
        """Every assignment computed, as two grouped GEMMs over the experts' contiguous rows:
        each expert's group starts at a multiple of GROUP_ALIGN rows (zero rows between), the
        last group runs to the buffer's static end (N·k + E·(GROUP_ALIGN − 1) rows). Offsets
        stay on the device: no host read."""
        n = xf.size(0)
        E, A, nk = self.n_experts, GROUP_ALIGN, tok.numel()
        m = nk + E * (A - 1)  # rows of the buffer: every group padded, a static bound
        padded = (counts + A - 1) // A * A  # (E,) each group's rows, aligned
        pstart = padded.cumsum(0) - padded  # (E,) where each group starts in the buffer
        start = counts.cumsum(0) - counts  # (E,) where its rows start among the sorted ones
        dest = pstart[e_s] + torch.arange(nk, device=xf.device) - start[e_s]  # (N·k,)
        rows = torch.full((m,), n, dtype=torch.long, device=xf.device).index_copy(0, dest, tok)
        gate = g.new_zeros(m).index_copy(0, dest, g)  # 0 on the padding rows
        ends = (pstart + padded).to(torch.int32)
        offs = torch.cat([ends[:-1], ends.new_full((1,), m)])  # the last group takes the rest
        xs = _with_zero_row(xf)[rows].to(dt)  # row n: zeros (padding)
        h = self._act(torch._grouped_mm(xs, self.w_in.to(dt).mT, offs=offs))  # (m, F)
        y = torch._grouped_mm(h, self.w_out.to(dt).mT, offs=offs)  # (m, C)
        return _scatter_back(xf, rows, y * gate[:, None].to(y.dtype))

    def _dropless(self, xf, tok, g, counts) -> torch.Tensor:
        """Every assignment computed: one gather of the tokens grouped by expert, a matmul per
        expert on its contiguous rows, one weighted scatter-add back. The experts' row counts
        are read on the host once per layer (the matmuls' shapes depend on them); where
        `_grouped_mm` runs (GROUPED_MM_DEVICES) `_grouped` replaces it."""
        sizes = counts.tolist()
        if not tok.numel():  # no tokens (an empty batch): nothing routed
            return torch.zeros_like(xf)
        xs = xf[tok]  # (N·k, C)
        parts = xs.split(sizes)
        y = torch.cat(
            [self._ffn(p, self.w_in[e], self.w_out[e]) for e, p in enumerate(parts) if sizes[e]]
        )
        y = y * g[:, None].to(y.dtype)
        return torch.zeros_like(xf).index_add_(0, tok, y.to(xf.dtype))

    def _capacity(self, xf, tok, g, counts, cap: int) -> torch.Tensor:
        """At most `cap` assignments per expert, the first in priority order (first choices,
        then token order; the rest dropped): every expert's rows padded to `cap` in one
        (E, cap, C) buffer and computed by batched matmuls. Static shapes, no host
        synchronisation (the counts stay on the device)."""
        n, C = xf.shape
        E = self.n_experts
        start = counts.cumsum(0) - counts  # (E,) each expert's first sorted row
        p = torch.arange(cap, device=xf.device)
        valid = p[None, :] < counts[:, None]  # (E, cap) slots holding an assignment
        src = (start[:, None] + p[None, :]).clamp(max=tok.numel() - 1)  # (E, cap) sorted row
        rows = torch.where(valid, tok[src], n).reshape(-1)  # (E·cap,) its token; n: empty
        gate = torch.where(valid, g[src], 0.0).reshape(-1, 1)
        xs = _with_zero_row(xf)[rows].view(E, cap, C)  # row n: zeros for the empty slots
        y = self._ffn(xs, self.w_in, self.w_out).reshape(-1, C)
        return _scatter_back(xf, rows, y * gate.to(y.dtype))

    def router_stats(self) -> dict[str, list[float] | float]:
        """Share of token assignments per expert and mean router entropy of the last forward
        (read by `llmtrain.monitor.probes.moe_stats`)."""
        if self.tokens_per_expert is None or self.router_entropy is None:
            return {"load": [0.0] * self.n_experts, "entropy": float("nan")}
        counts = self.tokens_per_expert.float()
        load = (counts / counts.sum().clamp(min=1)).tolist()
        return {"load": load, "entropy": float(self.router_entropy)}

    def _aux(self, logits, probs, gates, chosen, counts) -> torch.Tensor:
        c, E = self.cfg, self.n_experts
        loss = logits.new_zeros(())
        if c.moe_balance_coef:  # E · Σ_e f_e · P_e, f = share of assignments, P = mean prob
            f = counts.float() / counts.sum().clamp(min=1)
            loss = loss + c.moe_balance_coef * E * (f * probs.mean(0)).sum()
        if c.moe_z_coef:  # mean (log Σ exp logits)²: keeps router logits small
            loss = loss + c.moe_z_coef * torch.logsumexp(logits, dim=-1).square().mean()
        if c.moe_importance_coef:  # gate mass per expert
            imp = torch.zeros(E, device=gates.device).index_add(
                0, chosen.flatten(), gates.flatten()
            )
            loss = loss + c.moe_importance_coef * _cv2(imp)
        if c.moe_load_coef:  # soft (differentiable) token load per expert
            loss = loss + c.moe_load_coef * _cv2(probs.sum(0))
        return loss


def _with_zero_row(xf: torch.Tensor) -> torch.Tensor:
    """xf (N, C) and a row of zeros after it, at index N: what padding slots gather."""
    return torch.cat([xf, xf.new_zeros(1, xf.size(1))])


def _scatter_back(xf: torch.Tensor, rows: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sum the rows of y into their tokens `rows` (N: a padding slot, dropped): (N, C)."""
    n, C = xf.shape
    return xf.new_zeros(n + 1, C).index_add_(0, rows, y.to(xf.dtype))[:n]


def moe_layers(model: nn.Module) -> list[MoE]:
    return [m for m in model.modules() if isinstance(m, MoE)]


def moe_aux_loss(model: nn.Module) -> torch.Tensor | None:
    """Sum of the MoE layers' auxiliary losses from the last forward (None for a dense model)."""
    cfg = getattr(model, "cfg", None)
    if cfg is not None and not cfg.n_experts:
        return None  # dense: no module walk on the hot path
    losses = [m.aux_loss for m in moe_layers(model) if m.aux_loss is not None]
    return torch.stack(losses).sum() if losses else None


def tokens_per_expert(model: nn.Module) -> list[list[int]]:
    """Per layer, per expert: the token assignments of the last forward (for metrics)."""
    return [
        m.tokens_per_expert.tolist() for m in moe_layers(model) if m.tokens_per_expert is not None
    ]
