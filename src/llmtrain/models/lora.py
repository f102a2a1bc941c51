"""LoRA (Hu et al. 2021) as a model transform over plain `nn.Linear` layers, through peft's
`inject_adapter_in_model`: `apply_lora` freezes the model and adds rank-r adapters to the
linears whose names match `targets`; `merge_lora` folds them into the base weights and
returns plain `nn.Linear`s again (the export / `--merge-lora` path). peft is imported lazily.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import nn

from llmtrain.errors import ConfigError

# attention and MLP linears of every family (decoder.py / layers.py / encoder_decoder.py names)
DEFAULT_TARGETS = ["qkv", "q", "kv", "proj", "fc"]


@dataclass
class LoraConfig:
    rank: int = 0  # 0 = no LoRA (full fine-tune)
    alpha: float = 16.0  # the update is scaled by alpha / rank
    dropout: float = 0.0  # dropout on the adapter input
    # last name component of the nn.Linear layers to adapt (regexes allowed: "blocks\\.0\\..*")
    targets: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))

    def validate(self) -> None:
        if self.rank < 0:
            raise ConfigError(f"finetune.lora.rank must be >= 0 (0 = off), got {self.rank}")
        if self.alpha <= 0 or not 0.0 <= self.dropout < 1.0:
            raise ConfigError("finetune.lora.alpha must be > 0 and finetune.lora.dropout in [0, 1)")
        if self.rank and not self.targets:
            raise ConfigError("finetune.lora.targets is empty; name the linears to adapt")


def _require_peft():
    try:
        import peft
    except ImportError:  # pragma: no cover - peft is in the finetune extra
        raise ConfigError("LoRA needs peft: pip install 'llmtrain[finetune]'") from None
    return peft


def matching_linears(model: nn.Module, targets: list[str], skip: tuple[str, ...] = ()) -> list[str]:
    """Names of the nn.Linear modules whose last component (or full name) matches a target."""
    pats = [re.compile(t) for t in targets]
    found = []
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.Linear) or name.split(".")[0] in skip:
            continue
        last = name.split(".")[-1]
        if any(p.fullmatch(last) or p.fullmatch(name) for p in pats):
            found.append(name)
    return found


def apply_lora(model: nn.Module, cfg: LoraConfig, *, trainable: tuple[str, ...] = ()) -> nn.Module:
    """Freeze `model`, add LoRA adapters to the matching linears, keep the top-level
    submodules named in `trainable` (e.g. the task head) trainable. Returns `model`."""
    names = matching_linears(model, cfg.targets, skip=trainable)
    if not names:
        linears = sorted(
            {n.split(".")[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)}
        )
        raise ConfigError(
            f"finetune.lora.targets={cfg.targets} match no nn.Linear layer of this model; "
            f"its linear names are {', '.join(linears)}: set --set finetune.lora.targets=[...]"
        )
    peft = _require_peft()
    for p in model.parameters():
        p.requires_grad_(False)
    pc = peft.LoraConfig(
        r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=names
    )
    peft.inject_adapter_in_model(pc, model)
    for name, p in model.named_parameters():
        if "lora_" in name or name.split(".")[0] in trainable:
            p.requires_grad_(True)
    return model


def has_lora(model: nn.Module) -> bool:
    return any("lora_" in n for n, _ in model.named_parameters())


@torch.no_grad()
def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every LoRA adapter into its base weight (W + B·A·alpha/r) and put the plain
    nn.Linear back in its place; returns `model` without any peft module."""
    from peft.tuners.lora import LoraLayer

    for name, mod in list(model.named_modules()):
        if not isinstance(mod, LoraLayer):
            continue
        mod.merge()
        base = mod.get_base_layer()
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, base)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts, each shared tensor once."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
