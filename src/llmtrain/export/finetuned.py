"""Export of fine-tuned runs: `merged_run` folds LoRA adapters into the base weights and
writes a plain llmtrain run (`llmtrain export RUN --merge-lora --out DIR`: a base for
`--from`, `generate`, `eval` without peft); `add_chat_template` gives an exported Hugging
Face tokenizer the chat tokens (at our ids) and the chat template of an SFT run. The HF
export of a LoRA run always merges first (`merge_for_export`)."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

from torch import nn

from llmtrain.checkpoint.io import read_json, save_checkpoint
from llmtrain.errors import ExportError
from llmtrain.models.hf.base import Target
from llmtrain.models.lora import has_lora, merge_lora

RUN_FILES = ("tokenizer", "labels.json", "chat.json", "decision.json")


def merge_for_export(model: nn.Module) -> nn.Module:
    """A copy of `model` with every LoRA adapter merged (the model itself when it has none)."""
    return merge_lora(copy.deepcopy(model)) if has_lora(model) else model


def merged_run(loaded: Any, out: str | Path) -> Path:
    """Write `loaded` (a `checkpoint.inference.LoadedModel`) with merged adapters as a run
    directory `out` (one checkpoint, finetune.lora.rank 0); returns the checkpoint."""
    out = Path(out)
    if (out / "checkpoints").exists():
        raise ExportError(f"{out} already holds checkpoints; choose a new --out")
    model = merge_for_export(loaded.model)
    config = read_json(loaded.checkpoint / "config.json")
    config.setdefault("finetune", {}).setdefault("lora", {})["rank"] = 0
    state = {"step": loaded.step, "merged_from": str(loaded.checkpoint)}
    ckpt = save_checkpoint(out / "checkpoints", loaded.step, model, None, state, config)
    run = loaded.checkpoint.parent.parent
    for name in RUN_FILES:
        src = run / name
        if src.is_dir():
            shutil.copytree(src, out / name)
        elif src.is_file():
            shutil.copy2(src, out / name)
    return ckpt


def add_chat_template(out: str | Path, fmt: Any, template: str) -> None:
    """Add <|im_start|>/<|im_end|> (ids `fmt.im_start`, `fmt.im_end`) and `template` to the
    HF tokenizer saved in `out`; ExportError when the ids would not match ours."""
    from llmtrain.export.hf_tokenizer import require_transformers
    from llmtrain.finetune.chat import IM_END, IM_START

    tf = require_transformers()
    tok = tf.AutoTokenizer.from_pretrained(out)
    tok.add_special_tokens({"additional_special_tokens": [IM_START, IM_END]})
    got = tok.convert_tokens_to_ids([IM_START, IM_END])
    if got != [fmt.im_start, fmt.im_end]:
        raise ExportError(
            f"the exported tokenizer put the chat tokens at {got}, ours are "
            f"{[fmt.im_start, fmt.im_end]}; pass --no-tokenizer"
        )
    tok.chat_template = template
    tok.save_pretrained(out)


def _classifier_state(clf: nn.Module, target: Target) -> tuple[dict[str, Any], dict]:
    """(HF config kwargs, HF state dict) of a `SequenceClassifier` over a base of `target`:
    the base's body rows, its LM head dropped, the task head in HF's names (the family
    table's `Target.classifier`)."""
    from llmtrain.export.tables import to_hf

    spec = target.classifier
    kwargs, sd = to_hf(clf.base, target.name)
    sd = {k: v for k, v in sd.items() if not k.startswith(spec.drop)}
    sd.update({k: v.detach().clone() for k, v in spec.head(clf).items()})
    return kwargs, sd


def export_classifier_hf(clf: nn.Module, out: str | Path, tokenizer: Any, labels: list[str]):
    """Write a fine-tuned classifier as HF `...ForSequenceClassification` (+ tokenizer),
    reload it with `AutoModelForSequenceClassification` and compare logits on padded
    batches; returns {"target", "max_abs_diff", ...}. ExportError for a pooling HF lacks."""
    import safetensors.torch
    import torch

    from llmtrain.export.hf_tokenizer import check_tokenizer, require_transformers, save_tokenizer
    from llmtrain.export.tables import pick_target
    from llmtrain.models.hf_interop import get_target
    from llmtrain.tokenizer.base import PAD_ID

    target = get_target(pick_target(clf.base.cfg))
    spec = target.classifier
    if spec is None or spec.pooling != clf.pooling:
        raise ExportError(
            f"a {target.name} classifier with pooling {clf.pooling!r} has no Hugging Face "
            "...ForSequenceClassification form (GPT-2/Llama read the last token, BERT [CLS]); "
            "fine-tune with finetune.head.pooling='auto'"
        )
    tf = require_transformers()
    cfg_name, model_name = target.config_class, spec.model_class
    kwargs, sd = _classifier_state(clf, target)
    kwargs.update(
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
        pad_token_id=PAD_ID,
    )
    config = getattr(tf, cfg_name)(**kwargs)
    config.architectures = [model_name]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(out)
    sd = {k: v.float().contiguous() for k, v in sd.items()}
    safetensors.torch.save_file(sd, str(out / "model.safetensors"), metadata={"format": "pt"})
    res: dict[str, Any] = {"target": model_name}
    if tokenizer is not None:
        save_tokenizer(tokenizer, out, clf.base.cfg.vocab_size, target.name)
        res["tokenizer_texts_checked"] = check_tokenizer(out, tokenizer)
    hf, info = tf.AutoModelForSequenceClassification.from_pretrained(
        out, dtype=torch.float32, output_loading_info=True
    )
    if any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")):
        raise ExportError(f"{model_name} weights do not match: {info}")
    res["max_abs_diff"] = classifier_parity(clf, hf)
    if res["max_abs_diff"] > 1e-4:
        raise ExportError(
            f"exported classifier differs: max abs logit diff {res['max_abs_diff']:.3g}"
        )
    res["files"] = sorted(p.name for p in out.iterdir())
    return res


def classifier_parity(clf: nn.Module, hf: Any) -> float:
    """Max abs logit difference, ours vs the reloaded HF classifier, on right-padded ids of
    three lengths (HF reads the attention mask / the last non-pad token)."""
    import torch

    from llmtrain.tokenizer.base import PAD_ID

    g = torch.Generator().manual_seed(0)
    T = min(16, clf.base.cfg.block_size)
    ids = torch.randint(4, clf.base.cfg.vocab_size, (3, T), generator=g)
    lengths = torch.tensor([T, T // 2, 3])
    mask = torch.arange(T)[None, :] < lengths[:, None]
    ids[~mask] = PAD_ID
    clf = clf.float().eval()
    with torch.no_grad():
        theirs = hf.eval()(input_ids=ids, attention_mask=mask.long()).logits
        return float((clf(ids, lengths) - theirs).abs().max())
