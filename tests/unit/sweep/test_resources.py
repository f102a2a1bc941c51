"""Worker placement: one GPU per worker, or the CPU cores split evenly; never more workers
than devices or cores."""

from llmtrain.sweep.resources import plan_slots


def test_one_gpu_per_worker_capped_at_the_gpus():
    said = []
    slots = plan_slots(3, gpus=["2", "5"], say=said.append)
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in slots] == ["2", "5"]
    assert all(s.threads is None for s in slots)
    assert said and "2 GPU(s)" in said[0]


def test_cpu_cores_split_among_workers():
    slots = plan_slots(2, gpus=[], cores=8)
    assert [s.threads for s in slots] == [4, 4]
    assert all(
        s.env["OMP_NUM_THREADS"] == "4" and s.env["CUDA_VISIBLE_DEVICES"] == "" for s in slots
    )
    assert [s.threads for s in plan_slots(3, gpus=[], cores=8)] == [2, 2, 2]


def test_no_more_cpu_workers_than_cores():
    said = []
    slots = plan_slots(5, gpus=[], cores=2, say=said.append)
    assert len(slots) == 2 and [s.threads for s in slots] == [1, 1]
    assert "2 CPU core(s)" in said[0]


def test_cpu_device_ignores_gpus():
    slots = plan_slots(2, device="cpu", cores=4)
    assert [s.label for s in slots] == ["cpu x2 threads"] * 2
