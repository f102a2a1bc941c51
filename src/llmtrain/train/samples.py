"""`train.sample_every`: a short text sample generated during training, so a run shows what
the model writes as it learns. Every N steps rank 0 samples `MAX_NEW_TOKENS` tokens from the
tokenizer's BOS (temperature 0.8, its own seeded generator: the training RNG and so bitwise
resume are untouched; a plain loop without KV cache, as the preview is short — `generate`
is the full path) and logs them as a `sample` event in metrics.jsonl. Decoder models only;
for any other model (or FSDP, whose shards only all ranks together hold) it is skipped with
a logged reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from llmtrain.models.config import ModelConfig
from llmtrain.tokenizer import Tokenizer, load_tokenizer

MAX_NEW_TOKENS = 48
TEMPERATURE = 0.8


@dataclass
class TextSampler:
    every: int  # steps between samples; 0 = off
    tokenizer_dir: Path
    skip_reason: str | None = None  # why sampling is off although `every` asked for it
    _tokenizer: Tokenizer | None = None

    @classmethod
    def for_run(cls, every: int, model: ModelConfig, strategy: str, run_dir: Path) -> TextSampler:
        why = None
        if every and model.architecture != "decoder":
            why = "train.sample_every needs a decoder model (model.architecture is "
            why += f"{model.architecture!r}: it does not generate text left to right)"
        elif every and strategy == "fsdp":
            why = "train.sample_every is not supported with distributed.strategy=fsdp"
        return cls(0 if why else every, run_dir / "tokenizer", why)

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0 and self.tokenizer_dir.is_dir()

    def sample(self, model: torch.nn.Module, seed: int) -> str:
        """A short sample from BOS; the model's train/eval mode is restored."""
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.tokenizer_dir)
        tok, was_training = self._tokenizer, model.training
        device = next(model.parameters()).device
        gen = torch.Generator(device=device).manual_seed(seed)
        ids, block = [tok.bos_id], model.cfg.block_size  # type: ignore[union-attr]
        model.eval()
        try:
            with torch.inference_mode():
                for _ in range(MAX_NEW_TOKENS):
                    idx = torch.tensor([ids[-block:]], device=device)
                    logits = model.logits(model.forward_hidden(idx)[:, -1])  # type: ignore[operator]
                    probs = torch.softmax(logits.float() / TEMPERATURE, dim=-1)
                    token = int(torch.multinomial(probs, 1, generator=gen))
                    if token == tok.eos_id:
                        break
                    ids.append(token)
        finally:
            model.train(was_training)
        return tok.decode(ids[1:])
