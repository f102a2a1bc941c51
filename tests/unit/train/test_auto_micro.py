"""Automatic micro-batch size: the binary search backs off on (simulated) out-of-memory
errors and on sizes that leave less than the safety margin free; a trial is a real training
step (forward + backward, a second micro-batch when accumulating, an optimizer step that
allocates the state but moves no weight); the CPU path picks by a memory budget that counts
weights, gradients and optimizer state; accumulation keeps the global batch."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from llmtrain.train import auto_micro
from llmtrain.train.auto_micro import (
    activation_bytes_per_sequence,
    budget_probe,
    candidates,
    choose_micro_batch,
    largest_that_fits,
    oom_probe,
)
from llmtrain.train.config import RunConfig, TrainConfig


def fake_oom_above(limit: int, tried: list[int]):
    def trial(m: int) -> None:
        tried.append(m)
        if m > limit:
            raise torch.OutOfMemoryError(f"simulated: {m} sequences do not fit")

    return trial


@pytest.mark.parametrize("limit", [1, 3, 4, 12, 64])
def test_search_backs_off_on_oom(limit):
    sizes = candidates(64, world_size=1)  # 1 2 4 8 16 32 64
    tried: list[int] = []
    best = largest_that_fits(sizes, oom_probe(fake_oom_above(limit, tried), torch.device("cpu")))
    assert best == max(s for s in sizes if s <= limit)
    assert len(tried) <= 3  # binary search over 7 candidates


def test_other_errors_are_not_swallowed():
    def trial(m: int) -> None:
        raise RuntimeError("a real bug")

    with pytest.raises(RuntimeError, match="real bug"):
        oom_probe(trial, torch.device("cpu"))(4)


def test_cuda_path_with_simulated_oom_keeps_the_global_batch(monkeypatch):
    cfg = RunConfig()
    cfg.train = TrainConfig(batch_size=48, auto_micro_batch=True)
    tried: list[int] = []
    monkeypatch.setattr(auto_micro, "trial_step", lambda *a, **k: fake_oom_above(5, tried))
    monkeypatch.setattr(auto_micro, "CudaMeter", lambda device: FakeMeter(lambda m: 0.5))
    prec = SimpleNamespace(device=torch.device("cuda"))
    micro = choose_micro_batch(cfg, None, None, None, prec, world_size=2, vocab=64)
    assert micro == 4 and tried  # divisors of 24 per rank: 1 2 3 4 6 8 12 24
    cfg.train.micro_batch_size = micro
    assert cfg.train.grad_accum(world_size=2) == 6  # 4 x 6 x 2 = 48


def cpu_case(monkeypatch, vocab: int, budget_seqs: int):
    """A batch-32 config of a 2 × 32 model at seq 64 on a CPU whose memory budget (half the
    available) holds `budget_seqs` sequences' activations: (cfg, per_seq, prec)."""
    cfg = RunConfig()
    cfg.train = TrainConfig(batch_size=32)
    m = cfg.model
    m.n_layer, m.n_embd, m.n_head, m.block_size, m.vocab_size = 2, 32, 2, 64, vocab
    per_seq = activation_bytes_per_sequence(2, 32, 2, 64, vocab)
    monkeypatch.setattr(auto_micro, "available_memory_bytes", lambda: 2 * budget_seqs * per_seq)
    return cfg, per_seq, SimpleNamespace(device=torch.device("cpu"))


def test_cpu_path_picks_by_memory_budget(monkeypatch):
    cfg, per_seq, prec = cpu_case(monkeypatch, 100, 5)
    assert choose_micro_batch(cfg, None, None, None, prec, world_size=1, vocab=100) == 4
    assert budget_probe(per_seq, 8 * per_seq)(8) and not budget_probe(per_seq, 8 * per_seq)(9)


def test_cpu_path_with_the_fused_loss_counts_one_chunk_of_logits(monkeypatch):
    # a 128k vocabulary: unfused, the logits (3 fp32 copies) dominate a sequence's memory;
    # fused, they are capped at the op's chunks, so a larger micro-batch fits the same budget
    cfg, per_seq, prec = cpu_case(monkeypatch, 128_000, 4)
    plain = SimpleNamespace(fused_loss=False)
    fused = SimpleNamespace(fused_loss=True, loss_chunk_mib=16)
    assert choose_micro_batch(cfg, None, None, plain, prec, world_size=1, vocab=128_000) == 4
    assert choose_micro_batch(cfg, None, None, fused, prec, world_size=1, vocab=128_000) == 32
    body = activation_bytes_per_sequence(2, 32, 2, 64, 128_000, fused_loss=True)
    assert body == per_seq - 3 * 64 * 128_000 * 4 + 64 * 32 * 4  # logits out, head input in


class FakeMeter:
    """A memory meter whose peak fraction is a function of the size last tried."""

    def __init__(self, fraction):
        self.fraction, self.size = fraction, None

    def start(self) -> None:
        pass

    def peak_fraction(self) -> float:
        return self.fraction(self.size)


def test_sizes_that_leave_less_than_the_margin_free_do_not_fit():
    meter = FakeMeter(lambda m: m / 16)  # 16 would fill the device; 8 peaks at 50 %

    def trial(m: int) -> None:
        meter.size = m

    sizes = candidates(16, world_size=1)
    assert largest_that_fits(sizes, oom_probe(trial, torch.device("cpu"), meter, 0.1)) == 8
    meter.fraction = lambda m: m / 16 - 0.05  # 16 peaks at 95 %: inside the 10 % margin
    assert largest_that_fits(sizes, oom_probe(trial, torch.device("cpu"), meter, 0.1)) == 8
    assert largest_that_fits(sizes, oom_probe(trial, torch.device("cpu"), meter, 0.0)) == 16


class CountingObjective:
    """The CLM objective's calls, counted."""

    def __init__(self):
        from llmtrain.objectives import build_objective
        from llmtrain.objectives.config import ObjectiveConfig

        self.inner = build_objective("clm", ObjectiveConfig(), 64, 16, 0, None)
        self.forwards = 0

    def make_batch(self, *a, **k):
        return self.inner.make_batch(*a, **k)

    def forward(self, fn, batch):
        self.forwards += 1
        return self.inner.forward(fn, batch)

    def loss(self, out, batch):
        return self.inner.loss(out, batch)


def test_trial_is_a_real_step_that_moves_no_weight():
    from llmtrain.models import build_model
    from llmtrain.models.config import ModelConfig
    from llmtrain.optim import OptimConfig, build_optimizer
    from llmtrain.train.precision import resolve_precision

    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=16,
                                    vocab_size=64, dropout=0.1), device=torch.device("cpu"))  # fmt: skip
    before = {k: v.clone() for k, v in model.state_dict().items()}
    made: list[torch.optim.Optimizer] = []
    grads_at_step: list[bool] = []

    def make_optimizer():
        opt = build_optimizer(model, OptimConfig(), 0.0)
        opt.register_step_pre_hook(
            lambda o, a, k: grads_at_step.append(
                all(p.grad is not None for p in model.parameters())
            )
        )
        made.append(opt)
        return opt

    prec = resolve_precision("fp32", "cpu", "off")
    objective = CountingObjective()
    trial = auto_micro.trial_step(model, model, objective, prec, 64, 16, make_optimizer, per_rank=8)
    rng = torch.get_rng_state()
    trial(4)  # 4 < 8 per rank: accumulates, so two micro-batches
    assert objective.forwards == 2 and grads_at_step == [True]
    assert made[0].state and all("exp_avg" in s for s in made[0].state.values())  # allocated
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)  # dropout RNG untouched
    trial(8)  # the whole per-rank batch in one micro-batch: one forward
    assert objective.forwards == 3


def test_cpu_budget_counts_weights_gradients_and_optimizer_state(monkeypatch):
    from llmtrain.models import build_model

    cfg = RunConfig()
    cfg.train = TrainConfig(batch_size=32)
    m = cfg.model
    m.n_layer, m.n_embd, m.n_head, m.block_size, m.vocab_size = 2, 32, 2, 64, 100
    model = build_model(m, device=torch.device("cpu"))
    fixed = auto_micro.state_bytes(model, "adamw")
    n = sum(p.numel() for p in model.parameters())
    assert fixed == n * 4 * 4  # fp32 weights + grads + two AdamW moments
    per_seq = activation_bytes_per_sequence(2, 32, 2, 64, 100)
    monkeypatch.setattr(auto_micro, "available_memory_bytes", lambda: 2 * 8 * per_seq)
    prec = SimpleNamespace(device=torch.device("cpu"))
    assert choose_micro_batch(cfg, None, None, None, prec, world_size=1, vocab=100) == 8
    assert choose_micro_batch(cfg, model, None, None, prec, world_size=1, vocab=100) == 4
