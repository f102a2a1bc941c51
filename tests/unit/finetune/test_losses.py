"""Classification loss options and the SFT mask: user tokens get no gradient at all."""

import pytest
import torch
import torch.nn.functional as F

from llmtrain.finetune.chat import ChatFormat, render
from llmtrain.finetune.sft_data import SFTData
from llmtrain.finetune.tables import Row
from llmtrain.models import build_model
from llmtrain.objectives.base import IGNORE_INDEX
from llmtrain.objectives.classify import classification_loss
from llmtrain.objectives.config import ObjectiveConfig
from llmtrain.objectives.sft import SFT
from llmtrain.tokenizer import ByteTokenizer
from llmtrain.train.config import load_run_config


def test_plain_weighted_and_focal_loss():
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(6, 3, generator=g), torch.tensor([0, 1, 2, 0, 1, 2])
    plain = classification_loss(logits, labels)
    torch.testing.assert_close(plain, F.cross_entropy(logits, labels, reduction="sum"))
    w = torch.tensor([1.0, 2.0, 0.5])
    torch.testing.assert_close(
        classification_loss(logits, labels, w),
        (F.cross_entropy(logits, labels, reduction="none") * w[labels]).sum(),
    )
    p = F.softmax(logits, -1)[torch.arange(6), labels]
    focal = (-((1 - p) ** 2) * p.log()).sum()
    torch.testing.assert_close(classification_loss(logits, labels, gamma=2.0), focal)
    assert classification_loss(logits, labels, gamma=2.0) < plain  # easy examples count less


def _conversation_batch():
    tok = ByteTokenizer()
    fmt = ChatFormat(tok.vocab_size, tok.vocab_size + 1, 2)
    msgs = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "capital of France? 法国首都?"},
        {"role": "assistant", "content": "Paris 巴黎"},
        {"role": "user", "content": "and Italy?"},
        {"role": "assistant", "content": "Rome"},
    ]
    rows = [
        Row(1, {"messages": msgs}),
        Row(2, {"instruction": "say hi", "input": "", "output": "hi"}),
    ]
    data = SFTData(tok, fmt, rows, "mem.jsonl", max_length=200)
    return tok, fmt, msgs, data


def test_only_assistant_tokens_are_targets():
    tok, fmt, msgs, data = _conversation_batch()
    ids, learn = render(tok, fmt, msgs)
    learned = tok.decode([i for i, keep in zip(ids, learn) if keep and i < tok.vocab_size])
    assert learned == "Paris 巴黎Rome"
    assert sum(1 for i, keep in zip(ids, learn) if keep and i == fmt.im_end) == 2  # stop tokens
    b = data.batch([0, 1])
    assert (b["y"][1] != IGNORE_INDEX).sum() == len("hi") + 1  # + <|im_end|>


def test_user_tokens_get_no_gradient():
    tok, fmt, msgs, data = _conversation_batch()
    cfg = load_run_config(
        [], "gpt2-tiny", [f"model.vocab_size={tok.vocab_size + 2}", "model.block_size=128"]
    ).model
    torch.manual_seed(0)
    model = build_model(cfg)
    obj = SFT(tok.vocab_size, ObjectiveConfig())
    obj.sparse_head = False  # the head at every position, to perturb the masked ones
    batch = obj.make_batch(data.batch([0]), step=0, micro=0)
    logits = model(batch.inputs)  # (1, T, V)
    y = batch.targets[0]
    masked = y == IGNORE_INDEX
    user = "capital of France? 法国首都?and Italy?be brief"
    assert int(masked.sum()) > len(user.encode())  # every system/user byte is masked
    # the loss has no term at a user/system target: perturbing those logits changes nothing
    logits2 = logits.detach().clone()
    logits2[0, masked] += torch.randn_like(logits2[0, masked]) * 10
    l1, _ = obj.loss({"logits": logits.detach()}, batch)
    l2, _ = obj.loss({"logits": logits2}, batch)
    assert torch.equal(l1, l2)
    lg = logits.detach().requires_grad_(True)
    obj.loss({"logits": lg}, batch)[0].backward()
    assert lg.grad[0, masked].abs().sum() == 0 and lg.grad[0, ~masked].abs().sum() > 0
    assert batch.n_targets == int((~masked).sum())
    # by default the head runs at the assistant targets only: no logits elsewhere, same loss
    obj.sparse_head = True
    sparse = obj.make_batch(data.batch([0]), step=0, micro=0)
    assert torch.equal(sparse.predict, (~masked).nonzero().squeeze(1))
    obj.fused_loss = False  # the logits path
    with torch.no_grad():
        out = obj.forward(model, sparse)
    assert out["logits"].shape == (batch.n_targets, cfg.vocab_size)
    assert torch.allclose(obj.loss(out, sparse)[0], l1, rtol=1e-6)
    obj.fused_loss, obj.fuse_min_logits = True, 0  # fused (`on`; auto: big heads), same sum
    with torch.no_grad():
        out = obj.forward(model, sparse)
    assert "logits" not in out and out["head_loss"].nll.shape == (batch.n_targets,)
    assert torch.allclose(obj.loss(out, sparse)[0], l1, rtol=1e-6)


@pytest.mark.parametrize("role", ["bot", "Assistant"])
def test_unknown_role_is_one_clear_error(role):
    from llmtrain.errors import DataError

    tok = ByteTokenizer()
    fmt = ChatFormat(tok.vocab_size, tok.vocab_size + 1, 2)
    rows = [
        Row(
            1,
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "yo"},
                ]
            },
        ),
        Row(2, {"messages": [{"role": "user", "content": "hi"}, {"role": role, "content": "yo"}]}),
    ]
    with pytest.raises(
        DataError,
        match=rf"chat.jsonl:2: unknown role '{role}' in messages\[1\]; use one of system, user, assistant",
    ):
        SFTData(tok, fmt, rows, "chat.jsonl", 100)
