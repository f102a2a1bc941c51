"""The `Objective` interface and the shared token loss.

An objective turns a loader window pair (x, y) — each (B, T) — into its own `Batch`
(`make_batch`), runs the model on it (`forward`, called under autocast) and returns a loss
SUM plus metrics (`loss`, in fp32 outside autocast). `Batch.n_targets` is known before any
forward, so the trainer divides every micro-batch's sum by the whole step's target count:
gradient accumulation stays exact whatever the micro-batch split.

Objective-specific token ids (MASK, T5 sentinels) are appended AFTER the tokenizer's
vocabulary: MASK = V_tok, sentinel i = V_tok + 1 + i (`extra_vocab` of them), so the
tokenizer's own ids (PAD 0, UNK 1, BOS 2, EOS 3, ...) never change; export names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100
N_SPECIAL = 4  # ids 0..3 (PAD, UNK, BOS, EOS) are never masked or sampled as replacements


@dataclass
class Batch:
    tensors: dict[str, torch.Tensor]
    n_targets: int  # loss normaliser contribution (target tokens, or sequences)
    n_tokens: int  # tokens the model reads (throughput)
    meta: dict[str, Any] = field(default_factory=dict)

    def to(self, device: torch.device | str) -> Batch:
        # to a GPU through pinned memory, so the copy is asynchronous and the host queues on
        pin = torch.device(device).type == "cuda"
        moved = {
            k: (v.pin_memory() if pin and not v.is_pinned() else v).to(device, non_blocking=True)
            for k, v in self.tensors.items()
        }
        return Batch(moved, self.n_targets, self.n_tokens, self.meta)


def token_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    weights: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """SUM over target tokens of cross-entropy (fp32), with the loss options:

    - label_smoothing: mix the one-hot target with uniform (Szegedy et al. 2016);
    - z_loss: + z_loss · (log Σ exp logits)² per token (PaLM §5), keeps logits from drifting;
    - ignore_index: targets equal to it count nothing;
    - weights (same shape as targets): per-token weights, e.g. SFT masks or loss scaling.
    """
    flat = logits.float().reshape(-1, logits.size(-1))  # (N, V)
    tgt = targets.reshape(-1)  # (N,)
    per_tok = F.cross_entropy(
        flat, tgt, ignore_index=ignore_index, reduction="none", label_smoothing=label_smoothing
    )  # (N,), 0 where ignored
    if z_loss:
        keep = (tgt != ignore_index).float()
        per_tok = per_tok + z_loss * torch.logsumexp(flat, dim=-1).square() * keep
    if weights is not None:
        per_tok = per_tok * weights.reshape(-1).float()
    return per_tok.sum()


def seeded_generator(seed: int, step: int, micro: int) -> torch.Generator:
    """A CPU generator that is a pure function of (seed, step, micro-batch): dynamic masks
    differ every time a window is seen, and resume reproduces them exactly."""
    g = torch.Generator()
    g.manual_seed(((seed * 1_000_003 + step) * 10_007 + micro + 1) & (2**63 - 1))
    return g


class Objective:
    """Base class: subclasses set `name`, `architectures`, and implement the three steps."""

    name = "objective"
    architectures: tuple[str, ...] = ("decoder",)
    needs_sentence_head = False
    extra_vocab = 0  # ids appended after the tokenizer vocabulary
    # the loss is one token cross-entropy, so exp(loss) is a perplexity and loss/ln2 bits per
    # token; False where terms are summed (ELECTRA, SOP/NSP)
    token_cross_entropy = True

    def __init__(self, vocab_size: int, seed: int = 0, **options: Any) -> None:
        self.tok_vocab = vocab_size  # the tokenizer's vocabulary (without our extra ids)
        self.seed = seed
        self.label_smoothing = float(options.get("label_smoothing", 0.0))
        self.z_loss = float(options.get("z_loss", 0.0))

    @property
    def mask_id(self) -> int:
        return self.tok_vocab

    def make_batch(self, x: torch.Tensor, y: torch.Tensor, step: int, micro: int) -> Batch:
        raise NotImplementedError

    def forward(self, model: Any, batch: Batch) -> Any:
        raise NotImplementedError

    def loss(self, out: Any, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def _ce(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return token_loss(logits, targets, label_smoothing=self.label_smoothing, z_loss=self.z_loss)


def with_aux(loss_sum: torch.Tensor, model: Any, n_targets: int) -> torch.Tensor:
    """Add the MoE auxiliary loss of the last forward, weighted by this micro-batch's targets
    so that after the step's division it is the target-weighted mean over micro-batches."""
    from llmtrain.models.moe import moe_aux_loss

    aux = moe_aux_loss(model)
    return loss_sum if aux is None else loss_sum + aux * n_targets


def accuracy_counts(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    keep = targets != IGNORE_INDEX
    correct = ((logits.argmax(-1) == targets) & keep).sum()
    return {"correct": correct.detach(), "count": keep.sum().detach()}
