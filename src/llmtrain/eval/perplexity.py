"""Perplexity and bits per byte of arbitrary text with a sliding window (the HF perplexity
guide's strided evaluation, with each token scored exactly once).

`text_perplexity(model, tokenizer, text, stride=...)`: windows of block_size tokens start every
`stride` tokens; each window scores only the tokens the previous one did not, so every token
after the first window sees at least block_size - stride tokens of context. The text is
preceded by EOS (the document separator the model was trained with), so its first token is
scored too and bits per byte covers every byte: bpb = Σ nll / (ln 2 × UTF-8 bytes).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from llmtrain.errors import ConfigError, DataError
from llmtrain.eval.multiple_choice import require_causal
from llmtrain.utils.progress import progress


def windows(n: int, block: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first scored) of each window over n targets: input positions
    [begin, end), targets [first, end) scored; the ranges of scored targets tile 0..n."""
    if not 0 < stride <= block:
        raise ConfigError(f"stride must be in 1..block_size ({block}), got {stride}")
    out, prev_end = [], 0
    for begin in range(0, n, stride):
        end = min(begin + block, n)
        out.append((begin, end, prev_end))
        prev_end = end
        if end == n:
            break
    return out


@torch.no_grad()
def token_nll(
    model: nn.Module,
    ids: list[int],
    stride: int,
    *,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    desc: str = "ppl",
    quiet: bool = False,
) -> float:
    """Σ −log p(ids[t+1] | window) over t: the summed NLL in nats of ids[1:]."""
    inputs = torch.tensor(ids[:-1], dtype=torch.long)  # (N,)
    targets = torch.tensor(ids[1:], dtype=torch.long)  # (N,)
    spans = windows(len(targets), model.cfg.block_size, stride)
    total = 0.0
    was_training = model.training
    model.eval()
    with progress(len(targets), desc, "tok", disable=quiet) as bar:
        for s in range(0, len(spans), batch_size):
            chunk = spans[s : s + batch_size]
            width = max(end - begin for begin, end, _ in chunk)
            idx = torch.zeros(len(chunk), width, dtype=torch.long)  # (B, T) right-padded
            for b, (begin, end, _) in enumerate(chunk):
                idx[b, : end - begin] = inputs[begin:end]
            logp = F.log_softmax(model(idx.to(device)).float(), dim=-1).cpu()  # (B, T, V)
            for b, (begin, end, first) in enumerate(chunk):
                tgt = targets[first:end].unsqueeze(-1)  # (n, 1)
                total -= float(logp[b, first - begin : end - begin].gather(-1, tgt).sum())
                bar.advance(end - first)
    model.train(was_training)
    return total


def text_perplexity(
    model: nn.Module,
    tokenizer: Any,
    text: str,
    *,
    stride: int | None = None,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    name: str = "text",
    quiet: bool = False,
) -> dict[str, Any]:
    """{"tokens", "bytes", "loss" (nats/token), "ppl", "bpb", "stride"} of `text`;
    `stride` defaults to half the context window."""
    require_causal(model)
    block = model.cfg.block_size
    stride = stride or max(1, block // 2)
    ids = [tokenizer.eos_id, *tokenizer.encode(text)]
    nbytes = len(text.encode("utf-8"))
    if len(ids) < 2:
        raise DataError(f"{name} holds no text to score; pass a non-empty file")
    nll = token_nll(
        model, ids, stride, batch_size=batch_size, device=device, desc=name, quiet=quiet
    )
    n = len(ids) - 1
    loss = nll / n
    return {
        "text": name,
        "tokens": n,
        "bytes": nbytes,
        "loss": loss,
        "ppl": math.exp(min(loss, 50.0)),
        "bpb": nll / (math.log(2) * nbytes),
        "stride": stride,
        "context": block,
    }


def file_perplexity(model: nn.Module, tokenizer: Any, path: str | Path, **kw: Any) -> dict:
    """`text_perplexity` of a UTF-8 file; DataError naming the file otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"text file {path} does not exist") from None
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}: not UTF-8 (byte {e.start}); convert it to UTF-8 before scoring"
        ) from None
    return text_perplexity(model, tokenizer, text, name=str(path), **kw)
