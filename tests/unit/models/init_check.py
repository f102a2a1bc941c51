"""Shared check: `init_weights` writes every parameter and buffer of a meta-built model."""

import torch
from torch import nn

from llmtrain.models import init_weights

SENTINEL = 12345.0  # a value no scheme produces


def assert_init_covers_every_tensor(model_cls: type[nn.Module], cfg, scheme: str) -> None:
    with torch.device("meta"):
        model = model_cls(cfg)
    model.to_empty(device="cpu")
    tensors = dict(model.named_parameters()) | dict(model.named_buffers())
    with torch.no_grad():
        for t in tensors.values():
            t.fill_(SENTINEL)
    init_weights(model, scheme)
    for name, t in tensors.items():
        assert torch.isfinite(t).all(), name
        assert (t != SENTINEL).all(), f"{name} was not initialised"
