"""The objective interface: a typed `Batch` that moves every tensor, any `DataSource` feeding
`make_batch` and `evaluate`, each objective's declared train metrics and unused modules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmtrain.config.core import config_from_dict
from llmtrain.data.loader import TokenWindows
from llmtrain.eval import evaluate
from llmtrain.models import ModelConfig, build_model, get_model_preset
from llmtrain.objectives import (
    IGNORE_INDEX,
    OBJECTIVES,
    Batch,
    DataSource,
    ObjectiveConfig,
    build_objective,
    freeze_unused_heads,
)
from llmtrain.tokenizer import train_tokenizer

V, T = 60, 16


def test_batch_to_moves_every_tensor_and_rows_recount():
    ids = torch.arange(8).view(2, 4) + 4
    tgt = torch.full((2, 4), IGNORE_INDEX)
    tgt[1, :3] = 5
    opt = {"attention_mask": torch.ones(2, 4), "token_type": torch.zeros(2, 4).long()}
    opt |= {"prefix_len": torch.tensor([1, 2]), "decoder_inputs": ids.clone()}
    opt |= {"labels": torch.tensor([0, 1]), "loss_weights": torch.ones(2, 4)}
    b = Batch(ids, tgt, n_targets=3, n_tokens=8, **opt, extra={"u": torch.rand(2, 4)})
    moved = b.to("meta")
    tensors = [v for v in vars(moved).values() if isinstance(v, torch.Tensor)]
    assert len(tensors) == 8 and all(v.device.type == "meta" for v in tensors)
    assert moved.extra["u"].device.type == "meta" and b.inputs.device.type == "cpu"
    second = b.rows(slice(1, 2))
    assert second.n_targets == 3 and second.n_tokens == 4 and second.labels.tolist() == [1]


class ListSource:
    """A data source that is not token windows: (x, y) rows kept in memory."""

    def __init__(self, rows: torch.Tensor) -> None:
        self.rows = rows  # (N, T + 1)

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, indices):
        r = self.rows[list(indices)]
        return r[:, :-1], r[:, 1:]


def test_any_data_source_feeds_evaluate_like_token_windows():
    """Chinese text through a char tokenizer, as windows and as an in-memory source."""
    tok = train_tokenizer("char", ["语言模型从文本中学习预测下一个字符。" * 4], vocab_size=0)
    ids = np.array((tok.encode("语言模型从文本中学习预测下一个字符。") * 40)[: 8 * T + 1])
    windows = TokenWindows([ids.astype(np.uint16)], T)
    rows = torch.stack([torch.from_numpy(windows.window(i).astype(np.int64)) for i in range(6)])
    source = ListSource(rows)
    assert isinstance(windows, DataSource) and isinstance(source, DataSource)
    obj = build_objective("mlm", ObjectiveConfig(), tok.vocab_size, T, seed=0)
    cfg = ModelConfig(n_layer=1, n_head=2, n_embd=16, block_size=T, architecture="encoder")
    cfg.vocab_size = tok.vocab_size + obj.extra_vocab
    torch.manual_seed(0)
    model = build_model(cfg)
    a = evaluate(model, obj, windows, indices=range(6), micro_batch_size=4)
    b = evaluate(model, obj, source, indices=range(6), micro_batch_size=4)
    assert a == b and a["targets"] > 0 and "ppl" not in a


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_train_metrics_come_from_the_objective(name):
    obj = build_objective(name, ObjectiveConfig(), V, T, seed=0)
    counts = {"correct": 3, "count": 4, "sentence_correct": 1, "sentence_count": 2}
    counts |= {"rtd_correct": 9, "rtd_count": 10, "replaced": 2}
    got = obj.metrics(counts)
    want = {"token_acc": 0.75}
    if name in ("sop", "nsp"):
        want["sentence_acc"] = 0.5
    if name == "electra":
        want |= {"rtd_acc": 0.9, "replaced_frac": 0.2}
    assert got == want
    assert obj.metrics({}) == {}  # nothing counted: nothing reported


def test_unused_modules_are_the_sentence_head_unless_the_objective_calls_it():
    fields = {**get_model_preset("bert-tiny"), "vocab_size": V + 1, "block_size": T}
    fields["sentence_head"] = True
    model = build_model(config_from_dict(ModelConfig, fields))
    mlm = build_objective("mlm", ObjectiveConfig(), V, T, seed=0)
    sop = build_objective("sop", ObjectiveConfig(), V, T, seed=0)
    assert {id(m) for m in mlm.unused_modules(model)} == {id(model.pooler), id(model.sentence_cls)}
    assert sop.unused_modules(model) == []
    frozen = freeze_unused_heads(model, mlm)
    assert set(frozen) == {n for n, p in model.named_parameters() if not p.requires_grad}
    assert len(frozen) == 4  # two Linear layers: weight + bias each
