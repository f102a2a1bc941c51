"""AdamW (or Adafactor, SGD, Muon + AdamW) with two parameter groups: weight decay on matrices of linear layers only; none on
norms, biases and embeddings (decaying embeddings or gains toward zero only hurts)."""

from __future__ import annotations

import torch
from torch import nn

from llmtrain.optim.config import OptimConfig


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Split trainable parameters into decayed (Linear weights) and non-decayed groups.

    Tied parameters appear once (named_parameters de-duplicates shared tensors)."""
    decay, no_decay = [], []
    linear_weights = {
        id(m.weight) for m in model.modules() if isinstance(m, nn.Linear) and m.weight is not None
    }
    embedding_weights = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_matrix = id(p) in linear_weights and id(p) not in embedding_weights
        (decay if is_matrix else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, cfg: OptimConfig, lr: float) -> torch.optim.Optimizer:
    """`cfg.name` over `param_groups` (decay on Linear weights only). Adam-family updates
    pick PyTorch's fused kernel on CUDA and CPU (one pass over each parameter's state; on
    a 2-core CPU the whole train step 1.06x the foreach one, `bench/engine_throughput.py
    --against optim.implementation=foreach`), foreach on other devices."""
    groups = param_groups(model, cfg.weight_decay)
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    if cfg.name == "adafactor":
        return torch.optim.Adafactor(groups, lr=lr, beta2_decay=-0.8, eps=(None, 1e-3))
    fusable = all(p.device.type in ("cuda", "cpu") for p in model.parameters())
    impl = cfg.implementation
    if impl == "auto":
        impl = "fused" if fusable else "foreach"
    kwargs: dict = {}
    if impl == "fused":
        kwargs["fused"] = True
    elif impl == "foreach":
        kwargs["foreach"] = True
    else:
        kwargs["foreach"] = False
    betas = (cfg.beta1, cfg.beta2)
    if cfg.name == "muon":
        from llmtrain.optim.muon import MuonAdamW

        return MuonAdamW(model, lr, cfg.weight_decay, cfg.muon_momentum, betas, cfg.eps, **kwargs)
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=cfg.eps, **kwargs)
