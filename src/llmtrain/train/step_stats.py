"""Sync-free steps: the loss and grad norm of a step stay on the device and the host reads
them one step late, while the `StepGuard` takes exactly the decisions it takes when it reads
them at once.

How the decision for step N stays exact without a host read of step N's values:
`StepGuard.thresholds()` is a function of the applied steps BEFORE N only, so the host hands
those numbers to the device, which evaluates the guard's own test in float64 (`skip_flag`):
non-finite loss/grad norm, or (x - mean) / denom above the z-score limit. The optimizer takes
that flag as `found_inf` (fused Adam/AdamW skip the whole update on the device, the step
counter included, as under a GradScaler). The values are copied to pinned host memory with
`non_blocking=True` behind a CUDA event; `settle()` waits on that event only (not on the work
queued after it) and replays `StepGuard.check` on them, which therefore sees the same numbers
and the same window and reaches the same verdict, skip counts and rollback triggers included.

On a CPU nothing runs ahead of the host, so this only pays on CUDA (`train.sync_free=auto`);
tests force it on the CPU to prove the decisions equal the synchronous path bitwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from llmtrain.train.faults import StepGuard


def supports_device_skip(optimizer: torch.optim.Optimizer) -> bool:
    """True when `optimizer.step()` honours a device-side `found_inf` flag: fused Adam/AdamW
    (the kernels GradScaler drives without a host sync). Other optimizers ignore the flag."""
    if type(optimizer) not in (torch.optim.Adam, torch.optim.AdamW):
        return False
    return all(g.get("fused") for g in optimizer.param_groups)


@dataclass
class Pending:
    step: int
    values: torch.Tensor  # (2,) float64 [loss, grad_norm], pinned host memory when on CUDA
    event: torch.cuda.Event | None


def skip_flag(guard: StepGuard, loss: torch.Tensor, grad_norm: torch.Tensor) -> torch.Tensor:
    """1.0 where `guard.check` will skip this step, else 0.0 — on the device, no host read.

    `loss`/`grad_norm` are 0-d tensors holding exactly what the host would read (float64)."""
    skip = ~(torch.isfinite(loss) & torch.isfinite(grad_norm))
    for x, limit in zip((loss, grad_norm), guard.thresholds()):
        if limit is not None:
            mean, denom, z = limit
            skip = skip | (((x - mean) / denom) > z)
    return skip.to(torch.float32)


class DeferredStats:
    """Holds the last step's device values until the host needs them (depth one)."""

    def __init__(self, guard: StepGuard, device: torch.device):
        self.guard, self.device = guard, device
        self.pending: Pending | None = None
        self.last: dict[str, float] = {}  # the last settled step's loss / grad_norm / skip

    def decide(self, loss: torch.Tensor, grad_norm: torch.Tensor) -> torch.Tensor:
        return skip_flag(self.guard, loss, grad_norm)

    def push(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
        """Queue step `step`'s values for a later `settle` (one step late at most)."""
        assert self.pending is None, "settle() the previous step first"
        both = torch.stack([loss, grad_norm]).detach()
        if self.device.type == "cuda":
            host = torch.empty(2, dtype=torch.float64, pin_memory=True)
            host.copy_(both, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
        else:
            host, event = both, None
        self.pending = Pending(step, host, event)

    def settle(self) -> str | None | bool:
        """Read the pending step (waiting for its event only), replay the guard on it.

        Returns False when nothing was pending, else the guard's verdict (None = applied).
        May raise `TrainingDivergedError` exactly where the synchronous path would."""
        p, self.pending = self.pending, None
        if p is None:
            return False
        if p.event is not None:
            p.event.synchronize()
        loss, grad_norm = (float(v) for v in p.values.tolist())
        self.last = {"loss": loss, "grad_norm": grad_norm}
        reason = self.guard.check(loss, grad_norm, p.step)
        self.last["skip"] = reason
        return reason
