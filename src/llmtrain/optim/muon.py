"""`MuonAdamW` (`optim.name = "muon"`): Muon for the hidden 2-D matrices, AdamW for the rest.

`torch.optim.Muon` orthogonalises the momentum of 2-D weights only (Newton–Schulz, Jordan et
al. 2024); embeddings, the LM head, norms and biases must stay on AdamW (Moonlight, Liu et al.
2025). This optimizer holds one `torch.optim.Muon` and one `torch.optim.AdamW` and looks like a
single `torch.optim.Optimizer` to the loop: `param_groups` is the union of theirs (so setting
`group["lr"]` reaches both, and GradScaler, clipping and step hooks work), and `state_dict()`
is `{"muon": ..., "adamw": ...}` of plain tensors and numbers (loads with `weights_only=True`).

One learning rate drives both: Muon's update is rescaled to AdamW's RMS
(`adjust_lr_fn="match_rms_adamw"`: 0.2·sqrt(max(A, B))), so `train.lr` and its schedule
carry over from AdamW runs. Weight decay applies to the Muon matrices only, as with AdamW.
Not for FSDP: Newton–Schulz needs each whole matrix, and FSDP2 shards them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from llmtrain.errors import ConfigError


def muon_param_groups(model: nn.Module, weight_decay: float) -> tuple[list[dict], list[dict]]:
    """(Muon groups, AdamW groups): Linear weights except any output head → Muon; all other
    trainable tensors (embeddings, head, norms, biases) → AdamW without weight decay."""
    heads = {id(m.head_weight) for m in model.modules() if hasattr(m, "head_weight")}
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    hidden = {
        id(m.weight)
        for m in model.modules()
        if isinstance(m, nn.Linear) and m.weight.ndim == 2 and id(m.weight) not in heads
    }
    muon, adamw = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            is_hidden = id(p) in hidden and id(p) not in embeddings
            (muon if is_hidden else adamw).append(p)
    if any(type(p).__name__ == "DTensor" for p in muon):
        raise ConfigError(
            "optim.name='muon' needs whole matrices but the model is sharded "
            "(distributed.strategy=fsdp); use distributed.strategy=ddp or optim.name=adamw"
        )
    return (
        [{"params": muon, "weight_decay": weight_decay}],
        [{"params": adamw, "weight_decay": 0.0}],
    )


class MuonAdamW(torch.optim.Optimizer):
    def __init__(
        self,
        model: nn.Module,
        lr: float,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        betas: tuple[float, float] = (0.9, 0.95),
        eps: float = 1e-8,
        **adamw_kwargs: Any,
    ):
        muon_groups, adamw_groups = muon_param_groups(model, weight_decay)
        self.muon = torch.optim.Muon(
            muon_groups, lr=lr, momentum=momentum, adjust_lr_fn="match_rms_adamw"
        )
        self.adamw = torch.optim.AdamW(adamw_groups, lr=lr, betas=betas, eps=eps, **adamw_kwargs)
        super().__init__(self._groups(), {})  # the same dicts: an LR set here reaches both

    def _groups(self) -> list[dict]:
        return [*self.muon.param_groups, *self.adamw.param_groups]

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.muon.step()
        self.adamw.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if set(state_dict) != {"muon", "adamw"}:
            raise ValueError(
                "optimizer state is not a MuonAdamW state (was the run trained with another "
                "optim.name?)"
            )
        self.muon.load_state_dict(state_dict["muon"])
        self.adamw.load_state_dict(state_dict["adamw"])
        self.param_groups = self._groups()  # loading replaces the inner group dicts
