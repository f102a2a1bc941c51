"""Batch generation for generation tasks: `generate_outputs(model, tokenizer, prompts)` gives
each prompt's continuation (greedy by default, or sampled with a per-prompt seed), cut at a
stop string, so that `llmtrain.eval.generation_metrics` can score them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from llmtrain.eval.multiple_choice import require_causal
from llmtrain.generation.generate import generate_text
from llmtrain.utils.progress import progress


def generate_outputs(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = 0,
    stop: str | None = "\n",
    quiet: bool = False,
) -> list[str]:
    """The model's continuation of each prompt (greedy at temperature 0), cut at `stop`
    (default: the end of the line; None keeps everything up to EOS / max_new_tokens)."""
    require_causal(model)
    outs = []
    with progress(len(prompts), "generate", "it", disable=quiet) as bar:
        for i, prompt in enumerate(prompts):
            text = ""
            for piece in generate_text(
                model,
                tokenizer,
                prompt,
                max_new_tokens,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                seed=None if seed is None else seed + i,
            ):
                text += piece
                if stop and stop in text:
                    break
            outs.append(text.split(stop)[0] if stop else text)
            bar.advance()
    return outs
