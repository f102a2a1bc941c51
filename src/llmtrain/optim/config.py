"""`OptimConfig`: optimizer hyper-parameters other than the learning rate (which lives in
`train.lr` with its schedule, since users tune the two together)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from llmtrain.config.core import ConfigSection
from llmtrain.errors import ConfigError


@dataclass
class OptimConfig(ConfigSection):
    _prefix = "optim"

    # adamw | adafactor (factored second moments: less memory) | sgd (momentum, nesterov) |
    # muon (Muon on hidden matrices + AdamW on embeddings, head, norms, biases; optim/muon.py)
    name: Literal["adamw", "adafactor", "sgd", "muon"] = "adamw"
    momentum: float = 0.9  # sgd only
    muon_momentum: float = 0.95  # muon only (Nesterov momentum of the orthogonalised update)
    weight_decay: float = 0.1  # decoupled weight decay, on linear matrices only
    beta1: float = 0.9  # Adam first-moment decay
    beta2: float = 0.95  # Adam second-moment decay (0.95 for LLM stability; 0.999 classic)
    eps: float = 1e-8  # Adam denominator epsilon
    # "auto": fused kernel on CUDA and CPU, foreach elsewhere; all give the loop's update.
    implementation: Literal["auto", "fused", "foreach", "loop"] = "auto"

    def validate(self) -> None:
        for name in ("beta1", "beta2"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ConfigError(f"optim.{name} must be in [0, 1), got {v}")
        if self.weight_decay < 0:
            raise ConfigError(f"optim.weight_decay must be >= 0, got {self.weight_decay}")
        for name in ("momentum", "muon_momentum"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"optim.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.eps <= 0:
            raise ConfigError(f"optim.eps must be > 0, got {self.eps}")
