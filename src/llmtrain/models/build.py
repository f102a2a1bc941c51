"""Model construction: `build_model(cfg)` builds on the meta device, materialises on the target
device and runs one explicit `init_weights` (no tensor is allocated twice or left random);
`num_params` counts parameters the way scaling-law and MFU formulas expect."""

from __future__ import annotations

import torch
from torch import nn

from llmtrain.models.config import ModelConfig
from llmtrain.models.decoder import Transformer
from llmtrain.models.electra import Electra
from llmtrain.models.encoder_decoder import EncoderDecoder
from llmtrain.models.init import init_weights


def build_model(
    cfg: ModelConfig,
    device: torch.device | str | None = None,
    init_scheme: str | None = None,
) -> Transformer | EncoderDecoder | Electra:
    """A freshly initialised model on `device` (default CPU): a `Transformer` (decoder or
    encoder), an `EncoderDecoder` by `cfg.architecture`, or an `Electra` generator +
    discriminator when `cfg.generator_scale > 0`.

    Initialisation draws from torch's global RNG: seed it (`torch.manual_seed`) for a
    reproducible model. `init_scheme` overrides `cfg.init_scheme`.
    """
    with torch.device("meta"):
        cls = EncoderDecoder if cfg.architecture == "encoder_decoder" else Transformer
        cls = Electra if cfg.generator_scale else cls
        model = cls(cfg)  # validates cfg; shapes only, no memory
    model.to_empty(device=device if device is not None else "cpu")
    init_weights(model, init_scheme or cfg.init_scheme)
    return model


def num_params(model: nn.Module, non_embedding: bool = True) -> int:
    """Number of parameters; each shared tensor is counted once.

    `non_embedding=True` drops the lookup tables that do no matmul: the learned position
    embedding, and the token embedding unless it is tied to the LM head (then it is the
    head's matmul weight). This is the N of the 6N FLOPs estimate (nanoGPT convention).
    """
    total = sum(p.numel() for p in model.parameters())  # parameters() deduplicates
    if not non_embedding:
        return total
    wpe = getattr(model, "wpe", None)
    if wpe is not None:
        total -= wpe.weight.numel()
    if getattr(model, "lm_head", None) is not None:
        total -= model.wte.weight.numel()
    return total
