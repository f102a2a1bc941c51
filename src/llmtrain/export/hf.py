"""`export_hf`: write a trained model as a Hugging Face directory and verify it.

Writes model.safetensors (the mapped state dict, tied tensors once), config.json,
generation_config.json (generative targets) and the tokenizer (BPE only: its
`tokenizer.json` wrapped as a `PreTrainedTokenizerFast`, with the objective's extra ids
appended as added tokens: MASK, then T5 sentinels `<extra_id_i>`), then reloads the
directory with the target's `AutoModelFor...` and runs both models on the same ids, failing
above `tol` max abs logit difference. `transformers` is imported here only (optional).
"""

from __future__ import annotations

import json
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
    import safetensors.torch

    tf = _transformers()
    out = Path(out)
    target = target or pick_target(model.cfg)
    if target not in TARGETS:
        raise ExportError(f"unknown export target {target!r}; choose one of {', '.join(TARGETS)}")
    hf_cfg_kwargs, sd = to_hf(model, target)
    cfg_name, model_name, _ = TARGETS[target]
    config = getattr(tf, cfg_name)(**hf_cfg_kwargs)
    config.architectures = [model_name]
    out.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(out)
    if target == "t5" and not model.cfg.tie_embeddings:  # T5.1.1: a separate lm_head
        _patch_json(out / "config.json", tie_word_embeddings=False, scale_decoder_outputs=False)
    if target in ("gpt2", "llama", "mixtral", "t5"):
        tf.GenerationConfig.from_model_config(config).save_pretrained(out)
    sd = {k: v.float().contiguous() for k, v in sd.items()}
    safetensors.torch.save_file(sd, str(out / "model.safetensors"), metadata={"format": "pt"})
    if tokenizer is not None:
        save_tokenizer(tokenizer, out, model.cfg.vocab_size)
    diff = check_parity(model, out, target)
    if diff > tol:
        raise ExportError(f"exported model differs: max abs logit diff {diff:.3g} > {tol:g}")
    return {"target": target, "max_abs_diff": diff, "files": sorted(p.name for p in out.iterdir())}


def _patch_json(path: Path, **fields: Any) -> None:
    data = json.loads(path.read_text())
    data.update(fields)
    path.write_text(json.dumps(data, indent=2) + "\n")


def load_exported(out: Path, target: str) -> Any:
    """The directory loaded through the target's Auto class; ExportError when transformers
    reports weights it did not find or did not expect (a table out of date)."""
    tf = _transformers()
    auto = getattr(tf, TARGETS[target][2])
    hf, info = auto.from_pretrained(out, dtype=torch.float32, output_loading_info=True)
    bad = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys") and v}
    if bad:
        raise ExportError(f"mapping table out of date for {target}: {bad}")
    return hf.eval()


@torch.no_grad()
def check_parity(model: torch.nn.Module, out: Path, target: str, seq: int = 32) -> float:
    """Reload `out` with transformers and compare logits on fixed random ids (fp32, CPU):
    LM logits, plus the sentence (NSP/SOP) logits for BERT pre-training, the replaced-token
    logits for ELECTRA, and the decoder's logits on a second random sequence for T5."""
    hf = load_exported(out, target)
    g = torch.Generator().manual_seed(0)
    T = min(seq, model.cfg.block_size)
    idx = torch.randint(0, model.cfg.vocab_size, (2, T), generator=g)
    was = model.training
    ours = model.float().eval().cpu()
    try:
        if target == "t5":
            tgt = torch.randint(0, model.cfg.vocab_size, (2, max(T // 2, 1)), generator=g)
            pairs = [(ours(idx, tgt), hf(input_ids=idx, decoder_input_ids=tgt).logits)]
        elif target == "electra":
            pairs = [(ours.discriminate(idx), hf(idx).logits)]
        elif target == "bert_pretraining":
            res, hidden = hf(idx), ours.forward_hidden(idx)
            pairs = [
                (ours.logits(hidden), res.prediction_logits),
                (ours.sentence_logits(hidden), res.seq_relationship_logits),
            ]
        else:
            pairs = [(ours(idx), hf(idx).logits)]
    finally:
        model.train(was)
    return max(float((a - b).abs().max()) for a, b in pairs)
