"""A minimal GPT-2 train step in the nanoGPT style, the reference `engine_throughput.py
--reference` measures our step against: pre-LN blocks, causal SDPA (flash attention on a GPU),
tied embeddings, the loss computed inside `forward` so that `torch.compile` of the whole model
fuses the LM head's log-softmax with it, fused AdamW, and no host read in the step.

Written here from the published architecture (Radford et al. 2019) so the comparison needs no
outside checkout; the shapes come from our model config so both sides do the same FLOPs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    def __init__(self, d: int, n_head: int, bias: bool):
        super().__init__()
        self.n_head = n_head
        self.ln_1, self.ln_2 = nn.LayerNorm(d, bias=bias), nn.LayerNorm(d, bias=bias)
        self.qkv = nn.Linear(d, 3 * d, bias=bias)
        self.proj = nn.Linear(d, d, bias=bias)
        self.fc, self.fc_out = nn.Linear(d, 4 * d, bias=bias), nn.Linear(4 * d, d, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln_1(x)).split(C, dim=2)  # 3 x (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.fc_out(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab: int, block_size: int, n_layer: int, n_head: int, d: int, bias: bool):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(block_size, d)
        self.blocks = nn.ModuleList(Block(d, n_head, bias) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d, bias=bias)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = (
                    0.02 / math.sqrt(2 * n_layer)
                    if name.endswith(("proj.weight", "out.weight"))
                    else 0.02
                )
                nn.init.normal_(p, 0.0, std)  # fmt: skip

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        T = idx.size(1)
        x = self.wte(idx) + self.wpe.weight[:T]  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)  # (B, T, V), tied head
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.view(-1))


def reference_step(
    model_cfg, micro_batch: int, device: torch.device, dtype: torch.dtype | None, compile: bool
) -> Callable[[], None]:
    """A closure running one reference optimizer step at `model_cfg`'s shapes."""
    m = model_cfg
    model = GPT(m.vocab_size, m.block_size, m.n_layer, m.n_head, m.n_embd, m.bias).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}]
    fused = device.type == "cuda"
    opt = torch.optim.AdamW(groups, lr=6e-4, betas=(0.9, 0.95), fused=fused, foreach=not fused)
    fwd = torch.compile(model) if compile else model
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randint(0, m.vocab_size, (micro_batch, m.block_size + 1), generator=g).to(device)
    idx, tgt = x[:, :-1].contiguous(), x[:, 1:].contiguous()

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = fwd(idx, tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step
