"""`export_hf`: write a trained model as a Hugging Face directory and verify it.

Writes model.safetensors (the mapped state dict, tied tensors once), config.json,
generation_config.json (generative targets) and the tokenizer (`hf_tokenizer`); an ELECTRA
model also gets its generator as `ElectraForMaskedLM` in `generator/`. Then it reloads each
directory with the target's `AutoModelFor...` and runs both models on the same ids, failing
above `tol` max abs logit difference, and checks the tokenizer gives our ids through
`AutoTokenizer`. `transformers` is imported here only (optional).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from llmtrain.errors import ExportError
from llmtrain.export.hf_tokenizer import check_tokenizer, require_transformers, save_tokenizer
from llmtrain.export.tables import TARGETS, pick_target, to_hf
from llmtrain.models.hf import get_target

TOLERANCE = 1e-4


def export_hf(
    model: torch.nn.Module,
    out: str | Path,
    tokenizer: Any = None,
    target: str | None = None,
    tol: float = TOLERANCE,
) -> dict[str, Any]:
    """Write `model` (+ tokenizer) to `out` as HF `target` (default: `pick_target`); returns
    {"target", "max_abs_diff", "files"} (+ "generator_max_abs_diff" for ELECTRA,
    "tokenizer_texts_checked" with a tokenizer); raises ExportError when parity fails."""
    out = Path(out)
    target = target or pick_target(model.cfg)
    if target not in TARGETS:
        raise ExportError(f"unknown export target {target!r}; choose one of {', '.join(TARGETS)}")
    parts = {target: out, **{part: out / sub for sub, part in TARGETS[target].beside}}
    res: dict[str, Any] = {"target": target}
    for part, where in parts.items():
        _write_model(model, where, part)
        if tokenizer is not None:
            save_tokenizer(tokenizer, where, model.cfg.vocab_size, part)
        diff = check_parity(model, where, part)
        if diff > tol:
            raise ExportError(f"exported {part} differs: max abs logit diff {diff:.3g} > {tol:g}")
        key = "max_abs_diff" if part == target else "generator_max_abs_diff"
        res[key] = diff
    if tokenizer is not None:
        res["tokenizer_texts_checked"] = check_tokenizer(out, tokenizer)
    res["files"] = sorted(p.name for p in out.iterdir())
    return res


def _write_model(model: torch.nn.Module, out: Path, target: str) -> None:
    import safetensors.torch

    tf = require_transformers()
    hf_cfg_kwargs, sd = to_hf(model, target)
    t = get_target(target)
    config = getattr(tf, t.config_class)(**hf_cfg_kwargs)
    config.architectures = [t.model_class]
    out.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(out)
    if t.config_json and (fields := t.config_json(model.cfg)):
        _patch_json(out / "config.json", **fields)
    if t.generative:
        tf.GenerationConfig.from_model_config(config).save_pretrained(out)
    sd = {k: v.float().contiguous() for k, v in sd.items()}
    safetensors.torch.save_file(sd, str(out / "model.safetensors"), metadata={"format": "pt"})


def _patch_json(path: Path, **fields: Any) -> None:
    data = json.loads(path.read_text())
    data.update(fields)
    path.write_text(json.dumps(data, indent=2) + "\n")


def load_exported(out: Path, target: str) -> Any:
    """The directory loaded through the target's Auto class; ExportError when transformers
    reports weights it did not find or did not expect (a table out of date)."""
    tf = require_transformers()
    auto = getattr(tf, get_target(target).auto_class)
    hf, info = auto.from_pretrained(out, dtype=torch.float32, output_loading_info=True)
    bad = {
        k: v
        for k, v in info.items()
        if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v
    }
    if bad:
        raise ExportError(f"mapping table out of date for {target}: {bad}")
    return hf.eval()


@torch.no_grad()
def check_parity(model: torch.nn.Module, out: Path, target: str, seq: int = 32) -> float:
    """Reload `out` with transformers and compare the target's outputs (`Target.outputs`:
    LM logits, sentence logits, replaced-token logits, decoder logits...) on fixed random
    ids (fp32, CPU). Ids start above the rows a target reserves (RoBERTa's PAD, from which
    HF would restart its position count)."""
    hf = load_exported(out, target)
    t = get_target(target)
    g = torch.Generator().manual_seed(0)
    T = min(seq, model.cfg.block_size)
    idx = torch.randint(t.pos_offset, model.cfg.vocab_size, (2, T), generator=g)
    was = model.training
    ours = model.float().eval().cpu()
    try:
        pairs = t.outputs(ours, hf, idx, g)
    finally:
        model.train(was)
    return max(float((a - b).abs().max()) for a, b in pairs)
