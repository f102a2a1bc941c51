"""The pieces every Hugging Face adapter is made of: `Target` (one HF class a family writes
and reads), `Family` (the adapter: which targets a model maps onto, config.json -> our
fields), `Row` tables run both ways by `rows_to_hf` / `rows_from_hf`, and `require`, the one
"options this HF class cannot represent" check. No `transformers` import: plain tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from llmtrain.errors import ExportError

if TYPE_CHECKING:
    from llmtrain.models.config import ModelConfig

# (our key, HF key, how): how '' copies, 'T' transposes (GPT-2's Conv1D), 'pos' shifts a
# position table down by `pos_offset` rows (RoBERTa's positions start at PAD + 1), 'zeros'
# writes a zero (1, emb_dim) table that we do not have (HF always has a segment table; import
# drops it), a part name ('q', 'k', 'v', 'gate', 'up', 'xk', 'xv') takes that slice of one of
# our fused matrices (import concatenates the parts back in table order).
Row = tuple[str, str, str]
Pairs = list[tuple[torch.Tensor, torch.Tensor]]


def lm_logits(ours: Any, hf: Any, idx: torch.Tensor, g: torch.Generator) -> Pairs:
    """Parity outputs of a plain LM head: our logits vs HF's `.logits` on the same ids."""
    return [(ours(idx), hf(idx).logits)]


def score_head(clf: Any) -> dict[str, torch.Tensor]:
    """GPT-2 / Llama `...ForSequenceClassification`: `score`, no bias, on the last token."""
    return {"score.weight": clf.classifier.weight}


@dataclass(frozen=True)
class Classifier:
    """A target's `...ForSequenceClassification`: what a fine-tuned classifier over that base
    is exported as (export/finetuned.py) — the class, the pooling it reads, the LM-head rows
    it has no place for, and our task head under its names."""

    model_class: str  # e.g. "GPT2ForSequenceClassification"
    pooling: Literal["last", "cls"]  # the token HF classifies from
    drop: tuple[str, ...]  # prefixes of the base's rows it does not hold (the LM head)
    head: Callable[[Any], dict[str, torch.Tensor]] = score_head  # SequenceClassifier -> rows


@dataclass(frozen=True)
class Target:
    """One HF model class: its names, its weight rows, its config.json, its check, and the
    outputs export compares with transformers. Add one to a family's `targets` to add a
    head (e.g. a `...ForSequenceClassification`)."""

    name: str  # the `export --target` / `model.hf_target` name
    config_class: str  # e.g. "GPT2Config"
    model_class: str  # e.g. "GPT2LMHeadModel"
    auto_class: str  # the Auto class that loads it back, e.g. "AutoModelForCausalLM"
    rows: Callable[[ModelConfig], list[Row]]
    config: Callable[[ModelConfig], dict[str, Any]]  # HF config kwargs
    check: Callable[[ModelConfig], None]  # ExportError (via `require`) when not representable
    outputs: Callable[[Any, Any, torch.Tensor, torch.Generator], Pairs] = lm_logits
    objective: str = "clm"  # the objective an imported model continues training with
    generative: bool = False  # writes generation_config.json
    # ids named after the tokenizer's vocabulary: the objective's MASK, T5's sentinels too
    special: Literal["", "mask", "mask+sentinels"] = ""
    pos_offset: int = 0  # rows HF reserves below position 0 ('pos' rows, parity ids avoid PAD)
    config_json: Callable[[ModelConfig], dict[str, Any]] | None = None  # patched in after save
    beside: tuple[tuple[str, str], ...] = ()  # (subdir, part target) written with this one
    part_config: Callable[[ModelConfig], ModelConfig] | None = None  # the sub-model's config
    choosable: bool = True  # False: only written beside another (ELECTRA's generator)
    classifier: Classifier | None = None  # its ...ForSequenceClassification, if HF has one


@dataclass(frozen=True)
class Family:
    """One adapter per model family (one file in `families/`, which defines `FAMILY`)."""

    name: str
    model_types: tuple[str, ...]  # config.json `model_type` values this family imports
    targets: tuple[Target, ...]
    pick: Callable[[ModelConfig], str | None]  # the target a model's options map onto
    import_config: Callable[[dict[str, Any], dict[str, Any] | None], tuple[str, dict]]
    pos_offset_of: Callable[[dict[str, Any]], int] = lambda hf: 0  # from an HF config
    # an HF state dict as saved -> the layout `rows` read (Mixtral's per-expert tensors)
    normalise: Callable[[dict, ModelConfig, str], dict] = lambda sd, cfg, target: sd
    # weights loaded from beside the main directory (ELECTRA's generator/): (ours, path, cfg)
    load_beside: Callable[[dict, Path, ModelConfig], dict] | None = None
    optional_prefixes: tuple[str, ...] = ()  # our keys an import may leave as built


def require(
    cfg: ModelConfig, label: str, wanted: dict[str, Any], bad: list[str] | None = None
) -> None:
    """ExportError naming every option of `cfg` that differs from `wanted` (+ `bad`, reasons
    found by the caller): "model cannot be written as HF <label>: key=value (<label> needs
    ...); ..."."""
    bad = [
        f"{k}={getattr(cfg, k)!r} ({label} needs {v!r})"
        for k, v in wanted.items()
        if getattr(cfg, k) != v
    ] + (bad or [])
    if bad:
        raise ExportError(f"model cannot be written as HF {label}: " + "; ".join(bad))


def _part(cfg: ModelConfig, how: str) -> slice:
    q, kv, f = cfg.n_head * cfg.head_dim, cfg.kv_heads * cfg.head_dim, cfg.ffn_dim
    return {
        "q": slice(0, q),
        "k": slice(q, q + kv),
        "v": slice(q + kv, q + 2 * kv),
        "gate": slice(0, f),
        "up": slice(f, 2 * f),
        "xk": slice(0, q),  # cross-attention's fused kv (B, S, 2, nh, hs): keys first
        "xv": slice(q, 2 * q),
    }[how]


def rows_to_hf(
    ours: dict[str, torch.Tensor], rows: list[Row], cfg: ModelConfig, pos_offset: int = 0
) -> dict[str, torch.Tensor]:
    """HF state dict (contiguous copies) from ours through `rows`."""
    out = {}
    for o, h, how in rows:
        if how == "zeros":
            out[h] = torch.zeros(1, cfg.emb_dim)
            continue
        t = ours[o].detach()
        if how == "pos":
            t = torch.cat([t.new_zeros(pos_offset, t.size(1)), t])  # (offset + T, E)
        else:
            t = t.t() if how == "T" else t[_part(cfg, how)] if how else t
        out[h] = t.contiguous().clone()
    return out


def rows_from_hf(
    hf_sd: dict[str, torch.Tensor], rows: list[Row], pos_offset: int = 0
) -> dict[str, torch.Tensor]:
    """Our state dict from an HF one through the same `rows`: slices concatenated back in
    table order, transposes undone, position offsets and 'zeros' rows dropped. A missing HF
    key is an ExportError naming it."""
    out: dict[str, Any] = {}
    for o, h, how in rows:
        if how == "zeros":
            continue
        if h not in hf_sd:
            raise ExportError(f"Hugging Face weights lack {h!r} (needed for our {o!r})")
        t = hf_sd[h]
        if how == "pos":
            out[o] = t[pos_offset:]
        elif how and how != "T":
            out.setdefault(o, []).append(t)
        else:
            out[o] = t.t().contiguous() if how == "T" else t
    return {k: torch.cat(v, 0) if isinstance(v, list) else v for k, v in out.items()}


def common_fields(hf: dict[str, Any], tie_default: bool) -> dict[str, Any]:
    """ModelConfig fields every imported family shares."""
    return {
        "vocab_size": hf["vocab_size"],
        "tie_embeddings": bool(hf.get("tie_word_embeddings", tie_default)),
        "dropout": 0.0,
    }
