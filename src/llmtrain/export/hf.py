"""`export_hf`: write a trained model as a Hugging Face directory and verify it.

Writes model.safetensors + config.json + generation_config.json (through `transformers`'
`save_pretrained`) and the tokenizer (BPE only: its `tokenizer.json` wrapped as a
`PreTrainedTokenizerFast`, with the objective's extra ids appended as added tokens), then
reloads the directory with `AutoModelForCausalLM` / `AutoTokenizer`, runs both models on
the same ids and fails above `tol` max abs logit difference. `transformers` is imported here
only (an optional dependency).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from llmtrain.errors import ExportError
from llmtrain.export.tables import TARGETS, pick_target, to_hf

TOLERANCE = 1e-4


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ExportError("export needs `transformers`: pip install 'llmtrain[hf]'") from None
    return transformers


def save_tokenizer(tokenizer: Any, out: Path, vocab_size: int) -> Any:
    """Save an HF fast tokenizer; refuse tokenizers with no HF form (char, byte)."""
    tf = _transformers()
    if getattr(tokenizer, "kind", None) != "bpe":
        raise ExportError(
            f"the {getattr(tokenizer, 'kind', '?')!r} tokenizer has no Hugging Face form; "
            "train with --tokenizer bpe, or pass --no-tokenizer to export the weights only"
        )
    backend = tokenizer.backend
    vocab = backend.get_vocab_size(with_added_tokens=True)
    names = {
        tokenizer.pad_id: "pad",
        tokenizer.unk_id: "unk",
        tokenizer.bos_id: "bos",
        tokenizer.eos_id: "eos",
    }
    fast = tf.PreTrainedTokenizerFast(
        tokenizer_object=backend,
        **{f"{role}_token": backend.id_to_token(i) for i, role in names.items()},
    )
    if vocab_size > vocab:  # objective ids after the vocabulary: MASK, then sentinels
        extra = ["<|mask|>"] + [f"<extra_id_{i}>" for i in range(vocab_size - vocab - 1)]
        fast.add_special_tokens({"additional_special_tokens": extra})
        fast.mask_token = "<|mask|>"
    fast.save_pretrained(out)
    return fast


def export_hf(
    model: torch.nn.Module,
    out: str | Path,
    tokenizer: Any = None,
    target: str | None = None,
    tol: float = TOLERANCE,
) -> dict[str, Any]:
    """Write `model` (+ tokenizer) to `out` as HF `target` (default: inferred); returns
    {"target", "max_abs_diff", "files"}; raises ExportError when parity fails."""
    tf = _transformers()
    out = Path(out)
    target = target or pick_target(model.cfg)
    if target not in TARGETS:
        raise ExportError(f"unknown export target {target!r}; choose one of {', '.join(TARGETS)}")
    hf_cfg_kwargs, sd = to_hf(model, target)
    cfg_cls, model_cls = (getattr(tf, n) for n in TARGETS[target])
    hf = model_cls(cfg_cls(**hf_cfg_kwargs)).eval()
    missing, unexpected = hf.load_state_dict(sd, strict=False)
    real_missing = [k for k in missing if not (k == "lm_head.weight" and model.cfg.tie_embeddings)]
    if unexpected or real_missing:
        raise ExportError(f"mapping table out of date: missing {real_missing}, extra {unexpected}")
    out.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(out)  # model.safetensors, config.json, generation_config.json
    if tokenizer is not None:
        save_tokenizer(tokenizer, out, model.cfg.vocab_size)
    diff = check_parity(model, out)
    if diff > tol:
        raise ExportError(f"exported model differs: max abs logit diff {diff:.3g} > {tol:g}")
    return {"target": target, "max_abs_diff": diff, "files": sorted(p.name for p in out.iterdir())}


@torch.no_grad()
def check_parity(model: torch.nn.Module, out: Path, seq: int = 32) -> float:
    """Reload `out` with transformers and compare logits on fixed random ids (fp32, CPU)."""
    tf = _transformers()
    hf = tf.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, model.cfg.vocab_size, (2, min(seq, model.cfg.block_size)), generator=g)
    was = model.training
    ours = model.float().eval().cpu()(idx)
    model.train(was)
    return float((ours - hf(idx).logits).abs().max())
