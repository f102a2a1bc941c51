import pytest
import torch
from torch import nn

from llmtrain.checkpoint import find_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from llmtrain.errors import CheckpointError


def model():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Embedding(8, 4), nn.Linear(4, 8, bias=False))
    m[1].weight = m[0].weight  # tied weights must survive safetensors
    return m


def test_save_load_round_trip_and_retention(tmp_path):
    m = model()
    opt = torch.optim.AdamW(m.parameters(), lr=0.1)
    m(torch.tensor([[1, 2]])).sum().backward()
    opt.step()
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, m, opt, {"step": step}, {"c": 1}, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_000002", "step_000003"]
    assert not any(p.name.startswith(".tmp") for p in tmp_path.iterdir())
    m2 = model()
    with torch.no_grad():
        m2[0].weight.zero_()
    opt2 = torch.optim.AdamW(m2.parameters(), lr=0.1)
    state = load_checkpoint(find_checkpoint(tmp_path), m2, opt2)
    assert state["step"] == 3
    assert torch.equal(m2[0].weight, m[0].weight)
    assert m2[1].weight.data_ptr() == m2[0].weight.data_ptr()
    assert torch.equal(
        opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"]
    )


def test_rng_state_restored(tmp_path):
    m = model()
    torch.manual_seed(5)
    save_checkpoint(tmp_path, 1, m, None, {"step": 1}, {})
    expected = torch.rand(3)
    torch.manual_seed(99)
    load_checkpoint(find_checkpoint(tmp_path), model())
    assert torch.equal(torch.rand(3), expected)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    m = model()
    d = save_checkpoint(tmp_path, 1, m, None, {"step": 1}, {})
    (d / "model.safetensors").write_bytes(b"garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(d, model())
    d2 = save_checkpoint(tmp_path, 2, m, None, {"step": 2}, {})
    (d2 / "state.json").write_text("{trunc")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(d2, model())


def test_find_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        find_checkpoint(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        find_checkpoint(tmp_path)
