"""Classifier heads: a text's logits do not depend on the batch it is padded into, for
encoders (key-padding mask) and decoders (last non-pad token / mean pooling)."""

import pytest
import torch

from llmtrain.models import build_model
from llmtrain.models.heads import HeadConfig, SequenceClassifier
from llmtrain.train.config import load_run_config


def _classifier(preset: str, pooling: str) -> SequenceClassifier:
    cfg = load_run_config([], preset, ["model.vocab_size=50"]).model
    torch.manual_seed(0)
    clf = SequenceClassifier(
        build_model(cfg), HeadConfig(n_classes=3, pooling=pooling, dropout=0.0)
    )
    return clf.eval()


@pytest.mark.parametrize(
    "preset,pooling",
    [
        ("bert-tiny", "cls"),
        ("bert-tiny", "mean"),
        ("gpt2-tiny", "last"),
        ("gpt2-tiny", "mean"),
        ("llama-tiny", "last"),
    ],
)
def test_logits_do_not_depend_on_the_batch(preset, pooling):
    clf = _classifier(preset, pooling)
    texts = [
        torch.tensor([2, 10, 11, 12, 3]),
        torch.tensor([2, 20, 3]),
        torch.tensor([2, *range(5, 25), 3]),
    ]
    alone = [clf(t[None], torch.tensor([len(t)])) for t in texts]
    T = max(len(t) for t in texts)
    ids = torch.zeros(len(texts), T, dtype=torch.long)
    for i, t in enumerate(texts):
        ids[i, : len(t)] = t
    ids[0, len(texts[0]) :] = 7  # padding of any id must not matter
    batched = clf(ids, torch.tensor([len(t) for t in texts]))
    for i in range(len(texts)):
        torch.testing.assert_close(batched[i], alone[i][0], atol=1e-5, rtol=1e-5)


def test_cls_pooling_needs_an_encoder():
    from llmtrain.errors import ConfigError

    with pytest.raises(ConfigError, match="needs an encoder"):
        _classifier("gpt2-tiny", "cls")


def test_unused_lm_heads_of_the_base_are_frozen():
    clf = _classifier("bert-tiny", "cls")
    frozen = {n for n, p in clf.named_parameters() if not p.requires_grad}
    assert any(n.startswith("base.sentence_cls") for n in frozen)
    assert all(
        p.requires_grad
        for n, p in clf.named_parameters()
        if n.startswith(("classifier", "base.blocks"))
    )
