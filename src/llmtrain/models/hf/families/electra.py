"""ELECTRA: the discriminator as `ElectraForPreTraining` and, written beside it in
`generator/`, the generator as `ElectraForMaskedLM` (a part target, never chosen alone).
llmtrain's ELECTRA shares one embedding block between the two networks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from llmtrain.errors import ExportError
from llmtrain.models.hf.base import Family, Pairs, Row, Target, require
from llmtrain.models.hf.families.bert import check_encoder, encoder_config, encoder_fields
from llmtrain.models.hf.families.bert import encoder_rows as _encoder_rows

if TYPE_CHECKING:
    from llmtrain.models.config import ModelConfig

GENERATOR_DIR = "generator"  # an ELECTRA generator, beside its discriminator


def _gen_config(cfg: ModelConfig) -> ModelConfig:
    from llmtrain.models.electra import generator_config

    return generator_config(cfg)


def check(cfg: ModelConfig) -> None:
    check_encoder(cfg, "ELECTRA", electra=True)
    if cfg.sentence_head:
        require(cfg, "ELECTRA", {}, ["sentence_head=True (ELECTRA has no SOP/NSP head)"])


def config(cfg: ModelConfig) -> dict[str, Any]:
    return {**encoder_config(cfg), "embedding_size": cfg.emb_dim}


def rows(cfg: ModelConfig) -> list[Row]:
    """The discriminator (`Electra.disc` + its RTD head)."""
    d = "discriminator_predictions."
    return _encoder_rows(cfg, "disc.", "electra.") + [
        ("rtd_dense.weight", d + "dense.weight", ""),
        ("rtd_dense.bias", d + "dense.bias", ""),
        ("rtd_out.weight", d + "dense_prediction.weight", ""),
        ("rtd_out.bias", d + "dense_prediction.bias", ""),
    ]


def generator_rows(gen: ModelConfig) -> list[Row]:
    """The generator (`Electra.gen`, config `generator_config(cfg)`): its head transform is
    `generator_predictions`, its tied output `generator_lm_head`."""
    p = "generator_predictions."
    return _encoder_rows(gen, "gen.", "electra.") + [
        ("gen.head_dense.weight", p + "dense.weight", ""),
        ("gen.head_dense.bias", p + "dense.bias", ""),
        ("gen.head_norm.weight", p + "LayerNorm.weight", ""),
        ("gen.head_norm.bias", p + "LayerNorm.bias", ""),
        ("gen.head_bias", "generator_lm_head.bias", ""),
    ]


def _rtd(ours: Any, hf: Any, idx: torch.Tensor, g: Any) -> Pairs:
    return [(ours.discriminate(idx), hf(idx).logits)]


def _gen(ours: Any, hf: Any, idx: torch.Tensor, g: Any) -> Pairs:
    return [(ours.gen(idx), hf(idx).logits)]


def generator_scale(disc: dict[str, Any], gen: dict[str, Any]) -> float:
    """`model.generator_scale` that rebuilds the HF ELECTRA generator `gen` beside the
    discriminator `disc` (ModelConfig fields); ExportError when no scale does."""
    from llmtrain.models.config import ModelConfig

    scale = gen["num_attention_heads"] / disc["n_head"]
    built = _gen_config(ModelConfig(**{**disc, "generator_scale": scale}))
    want = {
        "n_embd": gen["hidden_size"],
        "n_head": gen["num_attention_heads"],
        "intermediate_size": gen["intermediate_size"],
        "n_layer": gen["num_hidden_layers"],
        "emb_dim": gen.get("embedding_size", gen["hidden_size"]),
    }
    bad = [f"{k}={getattr(built, k)} (HF: {v})" for k, v in want.items() if getattr(built, k) != v]
    if bad or gen.get("model_type") != "electra" or not 0 < scale <= 1:
        raise ExportError(
            "the ELECTRA generator in generator/ does not have the shape llmtrain builds for "
            f"it (heads x {scale:g} of the discriminator's, same head size and depth, FFN "
            f"scaled alike): {'; '.join(bad) or gen.get('model_type')}; remove generator/ to "
            "start a fresh generator"
        )
    return scale


def import_config(
    hf: dict[str, Any], generator: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """The discriminator's fields; the generator is not in its checkpoint: it starts fresh
    (scale 0.25) unless `generator/` holds one (`generator`, its config.json)."""
    fields = encoder_fields(hf, "electra")
    emb = hf.get("embedding_size", hf["hidden_size"])
    fields.update(embedding_size=None if emb == hf["hidden_size"] else emb, generator_scale=0.25)
    if generator is not None:
        fields["generator_scale"] = generator_scale(fields, generator)
    return "electra", fields


def load_generator(ours: dict, path: Path, cfg: ModelConfig) -> dict:
    """The generator's own tensors (`gen.*`) from `path/generator/` when there is one; its
    embedding block must equal the discriminator's, which llmtrain's ELECTRA shares."""
    from llmtrain.models.electra import SHARED
    from llmtrain.models.hf_interop import from_hf, hf_configs, read_hf_dir

    if hf_configs(path)[1] is None:
        return ours
    where = path / GENERATOR_DIR
    gen = from_hf(read_hf_dir(where)[1], cfg, "electra_generator")
    for key in [k for k in gen if k.split(".")[1] in SHARED]:
        if not torch.allclose(gen[key], ours["disc." + key[4:]][: gen[key].size(0)]):
            raise ExportError(
                f"{where}: the generator's {key[4:]} differs from the discriminator's; "
                "llmtrain's ELECTRA shares one embedding block, so it cannot hold both "
                "(remove generator/ to start a fresh generator)"
            )
        del gen[key]
    return {**ours, **gen}


FAMILY = Family(
    name="electra",
    model_types=("electra",),
    targets=(
        Target(
            "electra",
            *("ElectraConfig", "ElectraForPreTraining", "AutoModelForPreTraining"),
            rows=rows,
            config=config,
            check=check,
            outputs=_rtd,
            objective="electra",
            special="mask",
            beside=((GENERATOR_DIR, "electra_generator"),),
        ),
        Target(
            "electra_generator",
            *("ElectraConfig", "ElectraForMaskedLM", "AutoModelForMaskedLM"),
            rows=generator_rows,
            config=config,
            check=check,
            outputs=_gen,
            objective="mlm",
            special="mask",
            part_config=_gen_config,
            choosable=False,
        ),
    ),
    pick=lambda cfg: "electra" if cfg.architecture == "encoder" and cfg.generator_scale else None,
    import_config=import_config,
    load_beside=load_generator,
    optional_prefixes=("gen.",),
)
