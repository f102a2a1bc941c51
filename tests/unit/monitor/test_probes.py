"""In-loop probes: step-time split, skipped steps, per-group and update norms, memory."""

import json
import sys
import time

import pytest
import torch

from llmtrain.distributed.process_group import current
from llmtrain.monitor.dist import reduce_record
from llmtrain.monitor.probes import (
    ParamStats,
    StepClock,
    group_of,
    memory_stats,
    moe_stats,
    peak_flops,
    timed_source,
)


class SlowSource:
    def __init__(self, delay: float):
        self.delay, self.calls = delay, 0

    def micro_batch(self, step, m):
        self.calls += 1
        time.sleep(self.delay)
        return step, m


def test_step_clock_splits_data_wait_from_compute():
    clock = StepClock()
    clock.watching = True
    src = timed_source(SlowSource(0.01), clock)
    for step in range(3):
        clock.begin(step)
        src.micro_batch(step, 0)
        time.sleep(0.02)  # "compute"
        clock.optimizer_steps += 1
        clock.end()
    s = clock.window_stats()
    assert src.calls == 3  # the proxy forwards attributes
    assert 9 <= s["data_wait_ms"] < 20 and 19 <= s["compute_ms"] < 40
    assert s["step_ms"] == pytest.approx(s["data_wait_ms"] + s["compute_ms"])
    assert 0.2 < s["data_wait_frac"] < 0.5 and s["skipped_steps"] == 0
    assert clock.window_stats() == {"skipped_steps": 0}  # the window was reset


def test_a_step_without_optimizer_step_counts_as_skipped():
    clock = StepClock()
    clock.watching = True
    clock.begin(0)
    clock.end()  # e.g. GradScaler found inf and skipped optimizer.step()
    assert clock.window_stats()["skipped_steps"] == 1


def test_group_of():
    assert group_of("blocks.3.attn.qkv.weight") == "blocks.3"
    assert group_of("wte.weight") == "wte"
    assert group_of("model.layers.10.mlp.up.weight") == "model.layers.10"


def test_param_stats_match_a_manual_computation():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    clock = StepClock()
    stats = ParamStats(model, opt, every=2, clock=clock)
    for step in range(2):
        clock.begin(step)
        model(torch.randn(5, 4)).square().mean().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        opt.step()
        opt.zero_grad()
        clock.end()
    s = stats.take()
    g0 = torch.cat([grads["0.weight"].flatten(), grads["0.bias"]]).norm().item()
    assert s["grad_norm/0"] == pytest.approx(g0, rel=1e-5)
    upd = torch.cat([(p.detach() - before[n]).flatten() for n, p in model.named_parameters()])
    par = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert s["update_norm"] == pytest.approx(upd.norm().item(), rel=1e-5)
    assert s["param_norm"] == pytest.approx(par.norm().item(), rel=1e-5)
    assert s["update_ratio"] == pytest.approx(upd.norm().item() / par.norm().item(), rel=1e-5)
    assert clock.optimizer_steps == 2 and stats.take() == {}  # only at every-th step
    stats.remove()


def test_memory_moe_and_peak():
    assert memory_stats(torch.device("cpu"))["peak_rss_gb"] > 0
    assert peak_flops(torch.device("cpu")) is None
    assert peak_flops(torch.device("cpu"), 100.0) == 100e12

    class Moe(torch.nn.Module):
        def router_stats(self):
            return {"load": torch.tensor([0.5, 0.5]), "entropy": torch.tensor(0.69)}

    s = moe_stats(torch.nn.Sequential(Moe(), Moe()))
    assert s["moe_load"] == [[0.5, 0.5], [0.5, 0.5]] and len(s["moe_router_entropy"]) == 2
    assert moe_stats(torch.nn.Linear(2, 2)) == {}


def test_single_process_is_rank0_and_reduction_is_identity():
    rec = {"step": 3, "loss": 1.5}
    assert current().is_rank0 and reduce_record(rec) is rec


def test_gpu_stats_read_through_nvml(monkeypatch):
    import types

    from llmtrain.monitor.probes import GpuStats

    class NVMLError(Exception):
        pass

    fake = types.SimpleNamespace(
        NVMLError=NVMLError,
        NVML_TEMPERATURE_GPU=0,
        nvmlInit=lambda: None,
        nvmlDeviceGetHandleByIndex=lambda i: f"gpu{i}",
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=3 * 2**30, total=80 * 2**30),
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=97),
        nvmlDeviceGetPowerUsage=lambda h: 350_000,
        nvmlDeviceGetTemperature=lambda h, kind: 61,
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    s = GpuStats(torch.device("cuda", 1)).read()
    assert s == {
        "gpu_util": 97.0,
        "gpu_mem_used_gb": 3.0,
        "gpu_mem_total_gb": 80.0,
        "gpu_power_w": 350.0,
        "gpu_temp_c": 61.0,
    }
    assert GpuStats(torch.device("cpu")).read() == {}


def _reduce_worker(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    rec = {
        "step": 7,
        "loss": 1.0 + rank,
        "tokens_per_sec": 100.0,
        "max_memory_gb": 1.0 + rank,
        "event_note": "x",
    }
    red = reduce_record(rec)
    if current().is_rank0:
        with open(out, "w") as fh:
            json.dump(red, fh)
    dist.destroy_process_group()


def test_reduce_record_across_two_gloo_ranks(tmp_path):
    import multiprocessing as mp
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "r.json"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_reduce_worker, args=(r, port, str(out))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    red = json.loads(out.read_text())
    assert red == {
        "step": 7,
        "loss": 1.5,
        "tokens_per_sec": 200.0,
        "max_memory_gb": 2.0,
        "event_note": "x",
    }
