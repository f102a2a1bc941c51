"""The `Objective` interface, its typed `Batch`, the `DataSource` protocol and the token loss.

An objective turns one sample of a data source into its `Batch` (`make_batch`), runs the
model on it (`forward`, under autocast) and returns a loss SUM plus summable counts (`loss`,
fp32). `Batch.n_targets` is known before any forward, so the trainer divides every
micro-batch's sum by the whole step's target count: accumulation stays exact. The objective
also declares what is reported: `metrics` (train counts → metrics), `scored_targets`,
`eval_step` + `report` (its eval metrics; `next_token`: whether perplexity and bits per byte
are defined), `unused_modules` (heads it never calls, frozen so DDP sees every gradient) and
`sparse_head` (the LM head runs at the target positions only, `Batch.predict`) and
`fuses_loss` (its token loss can run fused with the LM head, `fused_loss.py`: `lm_head(batch)`
is the model's `head=`, and the forward returns `head_loss` in place of `logits`).

Objective-specific token ids (MASK, T5 sentinels) are appended AFTER the tokenizer's
vocabulary: MASK = V_tok, sentinel i = V_tok + 1 + i (`extra_vocab` of them), so the
tokenizer's own ids (PAD 0, UNK 1, BOS 2, EOS 3, ...) never change; export names them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from llmtrain.errors import ConfigError
from llmtrain.objectives.fused_loss import FUSE_MIN_LOGITS, FusedLinearCE, HeadLoss

# device types where `objective.fused_loss=auto` keeps the fused head in a run that compiles:
# a compiled CPU step with it beat the step with Inductor's compiled loss over whole logits
# (`bench/engine_throughput.py --preset gpt2-mini --device cpu --compile on --micro-batch 8
# --seq 256 --set objective.fused_loss=on --unfused-loss`, 2 threads, 7 interleaved rounds:
# 1.27x at vocabulary 32,000, 1.09x at 4,096); on a GPU Inductor's loss was measured, the op not
AUTO_FUSED_WHEN_COMPILED = {"cpu"}

if TYPE_CHECKING:
    from llmtrain.objectives.config import ObjectiveConfig
    from llmtrain.tokenizer.words import WordBoundaries

IGNORE_INDEX = -100
N_SPECIAL = 4  # ids 0..3 (PAD, UNK, BOS, EOS) are never masked or sampled as replacements


@runtime_checkable
class DataSource(Protocol):
    """Where an objective's batches come from: `len(source)` items, and `batch(indices)`, one
    sample of those items — whatever the objective's `make_batch` takes. `TokenWindows` is
    one (its sample is `(x, y)`: inputs and next-token targets, each (B, T) int64); a
    fine-tuning dataset yields e.g. padded token ids + labels for its own objective."""

    def __len__(self) -> int: ...

    def batch(self, indices: Sequence[int]) -> Any: ...


@dataclass
class Batch:
    """One micro-batch as an objective builds it; `to(device)` moves every tensor.

    `inputs` (B, T) ids the model reads (the encoder's, for an encoder-decoder); `targets`
    (B, T') token targets, IGNORE_INDEX where nothing is predicted; `n_targets` the loss
    normaliser contribution (target tokens, or sequences); `n_tokens` tokens read (throughput).
    Optional: `attention_mask` (B, T) 1 = real token (padded sources), `token_type` (B, T)
    segment ids, `prefix_len` (B,) bidirectional prefix, `decoder_inputs` (B, T'),
    `labels` (B,) sequence labels, `loss_weights` (B, T') per-target weights, `predict`
    (n,) the flat positions of `targets` where the LM head runs (`head_positions`; None:
    every position), and `extra` for tensors private to one objective.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    n_targets: int
    n_tokens: int
    attention_mask: torch.Tensor | None = None
    token_type: torch.Tensor | None = None
    prefix_len: torch.Tensor | None = None
    decoder_inputs: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    loss_weights: torch.Tensor | None = None
    predict: torch.Tensor | None = None
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    def _map(self, fn) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                out[f.name] = fn(v)
        out["extra"] = {k: fn(v) for k, v in self.extra.items()}
        return out

    def to(self, device: torch.device | str) -> Batch:
        # to a GPU through pinned memory, so the copy is asynchronous and the host queues on
        pin = torch.device(device).type == "cuda"

        def move(v: torch.Tensor) -> torch.Tensor:
            return (v.pin_memory() if pin and not v.is_pinned() else v).to(
                device, non_blocking=True
            )

        return replace(self, **self._map(move))

    def rows(self, index: slice) -> Batch:
        """The batch of rows `index` (every tensor sliced on dim 0), counts recomputed."""
        part = replace(self, **self._map(lambda v: v[index]))
        part.n_targets = int((part.targets != IGNORE_INDEX).sum())
        part.n_tokens = self.n_tokens * part.inputs.size(0) // max(1, self.inputs.size(0))
        if self.predict is not None:  # flat positions: recounted for the rows kept
            part.predict = head_positions(part.targets)
        return part

    @property
    def n_predicted(self) -> int:
        """Positions the LM head runs at: `predict`'s, else every position of `targets`."""
        return int(self.targets.numel() if self.predict is None else self.predict.numel())


def head_positions(targets: torch.Tensor) -> torch.Tensor:
    """The flat positions (n,) of `targets` (B, T) that hold a target, in row-major order (the
    order of `targets[targets != IGNORE_INDEX]`). Computed on the host with the batch, so
    gathering them on the device needs no synchronisation (a boolean mask would: its count)."""
    return (targets.reshape(-1) != IGNORE_INDEX).nonzero().squeeze(1)


def resolve_fused_loss(
    objective: Objective,
    mode: str,
    *,
    compiled: bool,
    device: str = "cpu",
    blocked_by: str | None = None,
    head_vocab: int = 0,
) -> bool:
    """Set and return whether `objective` fuses its LM head with its loss for this run:
    `objective.fused_loss` auto = where it can, unless the run compiles on a `device` type
    outside AUTO_FUSED_WHEN_COMPILED (there Inductor's fused loss was measured and this op
    not yet) or `blocked_by` names what the op cannot run
    under (a head split by tensor parallel, ZeRO-3's partitioned weights); on where it
    cannot is a one-line error. `head_vocab`: the model's vocabulary (the heads under
    FUSE_MIN_LOGITS logits then skip the op's wrapper too). In a run that compiles, the op's
    per-chunk softmax pass is compiled too (`fused_loss.compiled_rows_pass`)."""
    if mode == "on" and not objective.fuses_loss:
        raise ConfigError(
            f"objective.fused_loss=on: objective {objective.name!r} has no fused LM-head loss "
            "(ELECTRA samples its generator's logits; classifiers have no LM head); "
            "set objective.fused_loss=auto"
        )
    if mode == "on" and blocked_by:
        raise ConfigError(
            f"objective.fused_loss=on does not run under {blocked_by} yet; "
            "set objective.fused_loss=auto"
        )
    unmeasured = compiled and device not in AUTO_FUSED_WHEN_COMPILED
    on = objective.fuses_loss and (
        mode == "on" or (mode == "auto" and not unmeasured and not blocked_by)
    )
    objective.fused_loss = on
    objective.fused_compiled = on and compiled
    objective.fuse_min_logits = FUSE_MIN_LOGITS if mode == "auto" else 0
    if head_vocab:
        objective.head_vocab = head_vocab
    return on


class Tally:
    """An objective's eval counts summed over batches (`add`), and per-item values kept whole
    (`keep`: e.g. ELECTRA's detection scores, for a ROC AUC)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.parts: dict[str, list[torch.Tensor]] = {}

    def add(self, key: str, value: float | torch.Tensor) -> None:
        self.sums[key] = self.sums.get(key, 0.0) + float(value)

    def keep(self, key: str, values: torch.Tensor) -> None:
        self.parts.setdefault(key, []).append(values.detach().flatten().cpu())

    def get(self, key: str) -> float:
        return self.sums.get(key, 0.0)

    def cat(self, key: str) -> torch.Tensor:
        return torch.cat(self.parts[key]) if key in self.parts else torch.zeros(0)


def token_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    weights: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """SUM over target tokens of cross-entropy (fp32; logits (..., V), targets (...)), with:

    - label_smoothing: mix the one-hot target with uniform (Szegedy et al. 2016);
    - z_loss: + z_loss · (log Σ exp logits)² per token (PaLM §5), keeps logits from drifting;
    - ignore_index: targets equal to it count nothing;
    - weights (same shape as targets): per-token weights, e.g. SFT masks or loss scaling.
    """
    flat = logits.float().reshape(-1, logits.size(-1))  # (N, V), fp32 for a stable softmax
    tgt = targets.reshape(-1)  # (N,)
    if weights is None and not label_smoothing and not z_loss:  # the plain sum, one kernel
        return F.cross_entropy(flat, tgt, ignore_index=ignore_index, reduction="sum")
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


def accuracy_counts(pred: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Summable train counts of predicted ids `pred` against `targets` (same shape)."""
    keep = targets != IGNORE_INDEX
    correct = ((pred == targets) & keep).sum()
    return {"correct": correct.detach(), "count": keep.sum().detach()}


def sentence_heads(model: nn.Module) -> list[nn.Module]:
    """The SOP/NSP heads (pooler + classifier) of `model` and its sub-models, where present."""
    found = []
    for sub in model.modules():
        for head in (getattr(sub, "pooler", None), getattr(sub, "sentence_cls", None)):
            if isinstance(head, nn.Module):
                found.append(head)
    return found


class Objective:
    """Base class. A subclass sets `name`, `architectures` (and `extra_vocab`, `next_token`,
    `headline`) and implements `make_batch`, `forward` and `loss`; the defaults of the
    reporting methods score `batch.targets` against `out["logits"]` (token NLL, accuracy)."""

    name = "objective"
    architectures: tuple[str, ...] = ("decoder",)
    # sparse prediction: the LM head runs only where a target is (`Batch.predict`), not at
    # every position — an objective whose targets are a fraction of the tokens (masked LM,
    # assistant tokens, a prefix LM's suffix) skips that share of the head's matmuls
    sparse_head = False
    # the token loss can run fused with the LM head (`fused_loss.FusedLinearCE`: no whole
    # logits held); the instance's `fused_loss` says whether it does (objective.fused_loss)
    fuses_loss = False
    fused_compiled = False  # ... with its per-chunk pass compiled (a run that compiles)
    train_predictions = True  # its train metrics read the head's argmax (token accuracy)
    needs_sentence_head = False
    extra_vocab = 0  # ids appended after the tokenizer vocabulary
    # the loss is a mean next-token cross-entropy: exp(loss) is a perplexity and, over a whole
    # split, loss · tokens / (bytes · ln 2) its bits per byte; False where that means nothing
    next_token = False
    headline: tuple[str, ...] = ("token_acc",)  # eval metrics shown on the console's val line

    def __init__(
        self,
        vocab_size: int,
        options: ObjectiveConfig,
        *,
        seed: int = 0,
        block_size: int = 512,
        words: WordBoundaries | None = None,
    ) -> None:
        """`vocab_size`: the tokenizer's ids (without our extra ids); `options`: the run's
        typed `objective` config section; `words`: a `tokenizer.words.WordBoundaries` for
        whole-word masking (None: token level)."""
        self.tok_vocab = vocab_size
        self.seed = seed
        self.block_size = block_size
        self.words = words
        self.options = options
        self.label_smoothing = float(options.label_smoothing)
        self.z_loss = float(options.z_loss)
        self.loss_chunk_mib = float(options.loss_chunk_mib)
        self.head_vocab = vocab_size + self.extra_vocab  # the model's, once the trainer knows it
        # fused_loss, fuse_min_logits: as this config asks, before the trainer knows whether
        # the run compiles or splits the head (it calls `resolve_fused_loss` again then)
        resolve_fused_loss(self, options.fused_loss, compiled=False)

    @property
    def mask_id(self) -> int:
        return self.tok_vocab

    def make_batch(self, sample: Any, *, step: int, micro: int) -> Batch:
        """The batch for one `DataSource.batch(...)` sample (token windows: `(x, y)`, each
        (B, T)); `step`/`micro` seed any random masking (eval uses negative steps)."""
        raise NotImplementedError

    def forward(self, model: Any, batch: Batch) -> dict[str, Any]:
        """Run `model` (the module the loop hands over: maybe a DDP/FSDP wrapper) on `batch`:
        `logits` for the token targets, `aux` the MoE auxiliary loss (or None), and more."""
        raise NotImplementedError

    def loss(
        self, out: dict[str, Any], batch: Batch, *, train: bool = True
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(loss SUM over the batch's targets, summable counts for `metrics`). With
        `train=False` the plain objective: no label smoothing, z-loss or MoE aux loss."""
        raise NotImplementedError

    def metrics(self, totals: dict[str, Any]) -> dict[str, float]:
        """Reported train metrics from the counts `loss` returned, summed over micro-batches."""
        out = {}
        if int(totals.get("count", 0)):
            out["token_acc"] = float(totals["correct"]) / int(totals["count"])
        return out

    def scored_targets(self, batch: Batch) -> torch.Tensor:
        """The token targets (B, T') a task metric scores, IGNORE_INDEX elsewhere."""
        return batch.targets

    def with_head_positions(self, batch: Batch) -> Batch:
        """`batch` with `predict` set when this objective predicts sparsely (`sparse_head`)."""
        if self.sparse_head:
            batch.predict = head_positions(batch.targets)
        return batch

    @staticmethod
    def at_head(batch: Batch, values: torch.Tensor) -> torch.Tensor:
        """`values` (B, T', ...) laid out like the head's logits: (n, ...) at `batch.predict`
        (a gather, no host synchronisation), or unchanged when the head ran everywhere."""
        if batch.predict is None:
            return values
        return values.reshape(-1, *values.shape[2:]).index_select(0, batch.predict)

    def eval_step(self, out: dict[str, Any], batch: Batch, tally: Tally) -> None:
        """Add one eval batch's counts to `tally` (model output `out` of `forward`);
        `evaluate` has already added `loss` (the plain loss sum) and `n_targets`."""
        tgt = self.at_head(batch, self.scored_targets(batch))  # (B, T') or (n,)
        keep = tgt != IGNORE_INDEX
        if "head_loss" in out:  # the fused head scored every row against batch.targets
            nll = out["head_loss"].nll[keep].sum()
        else:
            nll = F.cross_entropy(out["logits"][keep].float(), tgt[keep], reduction="sum")
        tally.add("nll", nll)
        tally.add("correct", ((self.predicted(out) == tgt) & keep).sum())
        tally.add("targets", keep.sum())

    def report(self, tally: Tally) -> dict[str, float]:
        """The eval metrics from a tally: `token_nll` and `token_acc` of the scored targets,
        and `targets`, their count."""
        n = max(1.0, tally.get("targets"))
        nll, acc = tally.get("nll") / n, tally.get("correct") / n
        return {"token_nll": nll, "token_acc": acc, "targets": int(tally.get("targets"))}

    def unused_modules(self, model: nn.Module) -> list[nn.Module]:
        """Modules of `model` this objective never calls (frozen by `freeze_unused_heads`):
        by default any sentence head, which only sentence-pair objectives use."""
        return [] if self.needs_sentence_head else sentence_heads(model)

    def lm_head(self, batch: Batch) -> FusedLinearCE | None:
        """The model's `head=` for `batch`: with `fused_loss`, the LM head's matmul fused with
        the token loss against the targets at the head's positions; None (logits) else."""
        if not self.fused_loss or batch.n_predicted * self.head_vocab < self.fuse_min_logits:
            return None  # the plain logits (a small head: no wrapper at all)
        return FusedLinearCE(
            self.at_head(batch, batch.targets),
            ignore_index=IGNORE_INDEX,
            smoothing=self.label_smoothing,
            z_loss=self.z_loss,
            chunk_mib=self.loss_chunk_mib,
            # the argmax is a pass over the logits: only for train metrics that read it, eval
            predictions=self.train_predictions or not torch.is_grad_enabled(),
            min_logits=self.fuse_min_logits,
            compiled=self.fused_compiled,
        )

    @staticmethod
    def lm_out(result: Any) -> dict[str, Any]:
        """The forward's entry for what the model's head returned: `head_loss` (a fused
        `HeadLoss`) or `logits`."""
        return {"head_loss" if isinstance(result, HeadLoss) else "logits": result}

    @staticmethod
    def predicted(out: dict[str, Any]) -> torch.Tensor:
        """The LM head's predicted ids, laid out like its logits' rows."""
        return out["head_loss"].pred if "head_loss" in out else out["logits"].argmax(-1)

    def _ce(self, out: dict[str, Any], batch: Batch, train: bool) -> torch.Tensor:
        """The token loss sum of the head's `out["logits"]` against the batch's targets
        (gathered at the head's positions when it predicted sparsely), or the fused head's
        (`head_loss`: computed in the forward with this objective's smoothing and z-loss)."""
        if "head_loss" in out:
            return out["head_loss"].loss if train else out["head_loss"].nll.sum()
        logits, targets = out["logits"], self.at_head(batch, batch.targets)
        if not train:
            return token_loss(logits, targets)
        return token_loss(logits, targets, label_smoothing=self.label_smoothing, z_loss=self.z_loss)

    @staticmethod
    def _with_aux(loss_sum: torch.Tensor, out: dict[str, Any], batch: Batch, train: bool):
        """+ the MoE auxiliary loss of the forward, weighted by this micro-batch's targets so
        that after the step's division it is the target-weighted mean over micro-batches."""
        if not train or out.get("aux") is None:
            return loss_sum
        return loss_sum + out["aux"] * batch.n_targets
