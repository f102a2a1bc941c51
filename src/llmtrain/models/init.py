"""Weight initialisation schemes, applied once to a model materialised from the meta device.

`init_weights(model, scheme)` writes every parameter and buffer and fails loudly if a tensor
is left unwritten (a new layer type it does not know), so garbage memory never trains.
Schemes: `normal` (N(0, init_std) everywhere) and `gpt2` (as `normal`, with residual output
projections scaled by 1/sqrt(2*n_layer), GPT-2 paper section 2.3).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from llmtrain.errors import ConfigError
from llmtrain.models.layers import RotaryEmbedding

# Linear layers whose output is added straight onto the residual stream; each block adds two,
# so the stream's variance grows with depth unless these start smaller.
RESIDUAL_PROJECTIONS = ("attn.proj", "mlp.proj")


@torch.no_grad()
def _init(model: nn.Module, std: float, residual_std: float) -> None:
    done: set[int] = set()
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            s = residual_std if name.endswith(RESIDUAL_PROJECTIONS) else std
            nn.init.normal_(module.weight, mean=0.0, std=s)
            done.add(id(module.weight))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
                done.add(id(module.bias))
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            done.add(id(module.weight))
        elif isinstance(module, (nn.LayerNorm, nn.RMSNorm)):
            for t, fill in ((module.weight, 1.0), (getattr(module, "bias", None), 0.0)):
                if t is not None:
                    t.fill_(fill)
                    done.add(id(t))
        elif isinstance(module, RotaryEmbedding):
            module.reset_parameters()
            done.update((id(module.cos), id(module.sin)))
    missed = [
        n for n, t in (*model.named_parameters(), *model.named_buffers()) if id(t) not in done
    ]
    if missed:
        # An internal invariant: a layer type was added without teaching init about it.
        raise RuntimeError(f"init_weights left these tensors unwritten: {missed}")


def init_normal(model: nn.Module) -> None:
    """Every matrix N(0, init_std); biases 0; norm weights 1."""
    std = model.cfg.init_std
    _init(model, std, std)


def init_gpt2(model: nn.Module) -> None:
    """`normal`, with residual projections at init_std / sqrt(2 * n_layer) (GPT-2, nanoGPT)."""
    std = model.cfg.init_std
    _init(model, std, std / math.sqrt(2 * model.cfg.n_layer))


INIT_SCHEMES: dict[str, Callable[[nn.Module], None]] = {"normal": init_normal, "gpt2": init_gpt2}


def init_weights(model: nn.Module, scheme: str = "gpt2") -> None:
    """Initialise every tensor of `model` (a `Transformer`) in place with a named scheme."""
    fn = INIT_SCHEMES.get(scheme)
    if fn is None:
        raise ConfigError(
            f"unknown init scheme {scheme!r}; choose one of {', '.join(sorted(INIT_SCHEMES))}"
        )
    fn(model)
